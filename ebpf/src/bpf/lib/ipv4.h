/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/* IPv4 outer header: validation and fragment detection. */
#ifndef XVS_LIB_IPV4_H
#define XVS_LIB_IPV4_H

#include <linux/in.h>
#include <linux/ip.h>

#include "ip.h"

#define XVS_IP_MF 0x2000
#define XVS_IP_OFFSET 0x1fff

/*
 * Parses and validates the IPv4 header at c->pos (options allowed). On
 * XVS_CONTINUE the cursor is at the UDP header and *out is filled.
 * Terminal results: TRUNC_IPV4, BAD_IP_VERSION, BAD_IHL, BAD_IP_LEN,
 * PASS_NOT_VXLAN (not UDP), PASS_FRAGMENT.
 */
static __always_inline __u32 xvs_parse_ipv4(struct xvs_cursor *c, struct xvs_outer_ip *out)
{
	struct iphdr *ip = c->pos;
	__u32 hlen, tot_len, avail;

	if ((void *)(ip + 1) > c->end)
		return XVS_CNT_DROP_TRUNC_IPV4;
	if (ip->version != 4)
		return XVS_CNT_DROP_BAD_IP_VERSION;
	if (ip->ihl < 5)
		return XVS_CNT_DROP_BAD_IHL;
	hlen = ip->ihl * 4;
	avail = c->end - (void *)ip;
	if (hlen > avail)
		return XVS_CNT_DROP_TRUNC_IPV4; /* ends inside the options */
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hlen || tot_len > avail)
		return XVS_CNT_DROP_BAD_IP_LEN;
	if (ip->protocol != IPPROTO_UDP)
		return XVS_CNT_PASS_NOT_VXLAN;
	if (ip->frag_off & bpf_htons(XVS_IP_MF | XVS_IP_OFFSET))
		return XVS_CNT_PASS_FRAGMENT;

	xvs_addr_v4_mapped(&out->src, ip->saddr);
	xvs_addr_v4_mapped(&out->dst, ip->daddr);
	out->payload_len = tot_len - hlen;
	out->meta_flags = 0;
	out->decap_counter = XVS_CNT_DECAP_V4;
	c->pos = (void *)ip + hlen;
	return XVS_CONTINUE;
}

#endif /* XVS_LIB_IPV4_H */
