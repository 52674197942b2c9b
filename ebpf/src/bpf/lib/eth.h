/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/* Ethernet and 802.1Q / 802.1ad tags. */
#ifndef XVS_LIB_ETH_H
#define XVS_LIB_ETH_H

#include <linux/if_ether.h>

#include "common.h"

/* Tags an uplink parser walks past before giving up (QinQ). */
#define XVS_MAX_VLAN_DEPTH 2

struct xvs_vlan_hdr {
	__be16 tci;
	__be16 proto; /* EtherType of what follows the tag */
};

static __always_inline int xvs_is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/*
 * Parses the Ethernet header at c->pos. Returns 0 and sets *proto (network
 * order) or -1 if the frame is a runt (< 14 bytes).
 */
static __always_inline int xvs_parse_eth(struct xvs_cursor *c, __be16 *proto)
{
	struct ethhdr *eth = c->pos;

	if ((void *)(eth + 1) > c->end)
		return -1;
	/* One 16-bit load (struct ethhdr is packed: clang would load bytes). */
	*proto = *(__be16 *)((void *)eth + offsetof(struct ethhdr, h_proto));
	c->pos = eth + 1;
	return 0;
}

/*
 * Skips up to XVS_MAX_VLAN_DEPTH tags. On return *proto is the EtherType
 * after the tags. Returns the number of tags skipped, or -1 when the frame
 * ends inside a tag.
 */
static __always_inline int xvs_skip_vlans(struct xvs_cursor *c, __be16 *proto)
{
	int depth = 0;

#pragma unroll
	for (int i = 0; i < XVS_MAX_VLAN_DEPTH; i++) {
		struct xvs_vlan_hdr *vh = c->pos;

		if (!xvs_is_vlan(*proto))
			break;
		if ((void *)(vh + 1) > c->end)
			return -1;
		*proto = vh->proto;
		c->pos = vh + 1;
		depth++;
	}
	return depth;
}

#endif /* XVS_LIB_ETH_H */
