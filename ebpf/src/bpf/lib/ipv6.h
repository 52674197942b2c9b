/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/* IPv6 outer header: fixed header only; extension headers are not walked. */
#ifndef XVS_LIB_IPV6_H
#define XVS_LIB_IPV6_H

#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ipv6.h>

#include "ip.h"

/* Next-header values that are extension headers (RFC 8200 §4, IANA). */
static __always_inline int xvs_is_ipv6_ext(__u8 nh)
{
	switch (nh) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_ESP:
	case IPPROTO_AH:
	case IPPROTO_DSTOPTS:
	case 135: /* Mobility */
	case 139: /* HIP */
	case 140: /* Shim6 */
	case 253: /* experimental */
	case 254: /* experimental */
		return 1;
	default:
		return 0;
	}
}

/*
 * Parses the fixed IPv6 header at c->pos. On XVS_CONTINUE the cursor is at
 * the UDP header and *out is filled. Terminal results: TRUNC_IPV6,
 * BAD_IP_VERSION, BAD_IP_LEN, PASS_IPV6_EXT, PASS_NOT_VXLAN.
 */
static __always_inline __u32 xvs_parse_ipv6(struct xvs_cursor *c, struct xvs_outer_ip *out)
{
	struct ipv6hdr *ip6 = c->pos;
	__u32 plen, avail;

	if ((void *)(ip6 + 1) > c->end)
		return XVS_CNT_DROP_TRUNC_IPV6;
	if (ip6->version != 6)
		return XVS_CNT_DROP_BAD_IP_VERSION;
	plen = bpf_ntohs(ip6->payload_len);
	avail = c->end - (void *)(ip6 + 1);
	if (plen > avail)
		return XVS_CNT_DROP_BAD_IP_LEN;
	if (ip6->nexthdr != IPPROTO_UDP)
		return xvs_is_ipv6_ext(ip6->nexthdr) ? XVS_CNT_PASS_IPV6_EXT
						     : XVS_CNT_PASS_NOT_VXLAN;

	__builtin_memcpy(out->src.addr, &ip6->saddr, 16);
	__builtin_memcpy(out->dst.addr, &ip6->daddr, 16);
	out->payload_len = plen;
	out->meta_flags = XVS_META_F_VTEP_IPV6;
	out->decap_counter = XVS_CNT_DECAP_V6;
	c->pos = ip6 + 1;
	return XVS_CONTINUE;
}

#endif /* XVS_LIB_IPV6_H */
