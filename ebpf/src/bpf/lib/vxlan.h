/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/* UDP to the VXLAN port and the VXLAN header (RFC 7348). */
#ifndef XVS_LIB_VXLAN_H
#define XVS_LIB_VXLAN_H

#include <linux/if_ether.h>
#include <linux/udp.h>

#include "direct.h"
#include "ip.h"

struct xvs_vxlan_hdr {
	__be32 flags; /* I flag is 0x08000000; every other bit reserved, ignored on receipt */
	__be32 vni;   /* VNI in the upper 24 bits, low 8 bits reserved */
};

#define XVS_VXLAN_I_FLAG 0x08000000
#define XVS_VXLAN_HLEN (sizeof(struct udphdr) + sizeof(struct xvs_vxlan_hdr))

struct xvs_vxlan {
	__u32 vni;       /* host order */
	__u32 bd;        /* bridge domain the VNI maps to */
	__u32 inner_len; /* bytes of inner Ethernet frame the UDP length announces */
};

static __always_inline __u16 xvs_vxlan_port(const struct xvs_config *cfg)
{
	if (cfg && cfg->vxlan_port)
		return cfg->vxlan_port;
	return XVS_VXLAN_PORT_DEFAULT;
}

/* The bridge domain of `vni`: the direct table, else the hash. */
static __always_inline int xvs_vni_bd(const struct xvs_config *cfg, __u32 vni, __u32 *bd)
{
	__u32 *found;

	if (cfg && xvs_direct_find(&xvs_vni_direct, cfg, cfg->vni_seed, cfg->vni_shift, vni, bd))
		return 1;
	found = bpf_map_lookup_elem(&xvs_vnis, &vni);
	if (!found)
		return 0;
	*bd = *found;
	return 1;
}

/* Whether *dst is one of this node's VTEP addresses: the hint first (an
 * inlined array lookup and four compares), then the hash. */
static __always_inline int xvs_is_local_vtep(const struct xvs_addr *dst)
{
	__u32 key = 0;
	const __u32 *hint = bpf_map_lookup_elem(&xvs_vtep_hint, &key);
	const __u32 *d = (const __u32 *)dst->addr;

	asm volatile(""); /* two lookups, not one on a run-time map */
	if (hint && (hint[0] | hint[1] | hint[2] | hint[3]) && hint[0] == d[0] &&
	    hint[1] == d[1] && hint[2] == d[2] && hint[3] == d[3])
		return 1;
	return bpf_map_lookup_elem(&xvs_local_vteps, dst) != NULL;
}

/*
 * Parses UDP + VXLAN at c->pos, given the outer IP header's results. On
 * XVS_CONTINUE the cursor is at the inner Ethernet header and *vx is
 * filled. Terminal results: TRUNC_UDP, PASS_NOT_VXLAN (other port),
 * PASS_NOT_LOCAL, BAD_UDP_LEN, TRUNC_VXLAN, VXLAN_NO_I_FLAG, UNKNOWN_VNI,
 * TRUNC_INNER.
 */
static __always_inline __u32 xvs_parse_vxlan(struct xvs_cursor *c, const struct xvs_outer_ip *ip,
					     struct xvs_vxlan *vx)
{
	const struct xvs_config *cfg = xvs_config_get();
	struct udphdr *udp = c->pos;
	struct xvs_vxlan_hdr *vh;
	__u32 udp_len;

	if (ip->payload_len < sizeof(*udp) || (void *)(udp + 1) > c->end)
		return XVS_CNT_DROP_TRUNC_UDP;
	if (udp->dest != bpf_htons(xvs_vxlan_port(cfg)))
		return XVS_CNT_PASS_NOT_VXLAN;
	if (!xvs_is_local_vtep(&ip->dst))
		return XVS_CNT_PASS_NOT_LOCAL;
	udp_len = bpf_ntohs(udp->len);
	if (udp_len < sizeof(*udp) || udp_len > ip->payload_len)
		return XVS_CNT_DROP_BAD_UDP_LEN;

	vh = (void *)(udp + 1);
	if (udp_len < XVS_VXLAN_HLEN || (void *)(vh + 1) > c->end)
		return XVS_CNT_DROP_TRUNC_VXLAN;
	if (!(vh->flags & bpf_htonl(XVS_VXLAN_I_FLAG)))
		return XVS_CNT_DROP_VXLAN_NO_I_FLAG;
	vx->vni = bpf_ntohl(vh->vni) >> 8;
	if (!xvs_vni_bd(cfg, vx->vni, &vx->bd))
		return XVS_CNT_DROP_UNKNOWN_VNI;
	vx->inner_len = udp_len - XVS_VXLAN_HLEN;
	if (vx->inner_len < ETH_HLEN || (void *)(vh + 1) + ETH_HLEN > c->end)
		return XVS_CNT_DROP_TRUNC_INNER;
	c->pos = vh + 1;
	return XVS_CONTINUE;
}

#endif /* XVS_LIB_VXLAN_H */
