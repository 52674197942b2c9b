/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/* What the IPv4 and IPv6 parsers hand to the UDP/VXLAN parser. */
#ifndef XVS_LIB_IP_H
#define XVS_LIB_IP_H

#include "common.h"

/* A parser's "keep going" result; any other value is a terminal counter. */
#define XVS_CONTINUE XVS_CNT_MAX

struct xvs_outer_ip {
	struct xvs_addr src; /* v4-mapped for IPv4 */
	struct xvs_addr dst; /* v4-mapped for IPv4 */
	__u32 payload_len;   /* bytes of IP payload the header announces (≤ what the frame holds) */
	__u16 meta_flags;    /* XVS_META_F_VTEP_IPV6 for IPv6 */
	__u16 decap_counter; /* XVS_CNT_DECAP_V4 or XVS_CNT_DECAP_V6 */
};

static __always_inline void xvs_addr_v4_mapped(struct xvs_addr *a, __be32 v4)
{
	__builtin_memset(a->addr, 0, 10);
	a->addr[10] = 0xff;
	a->addr[11] = 0xff;
	__builtin_memcpy(&a->addr[12], &v4, 4);
}

#endif /* XVS_LIB_IP_H */
