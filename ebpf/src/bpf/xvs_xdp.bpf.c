// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * xvs XDP classifier: the kernel half of the xvs switch.
 *
 * Per ingress interface (maps xvs_ports_array / xvs_ports):
 *   uplink  — VXLAN to a local VTEP address is validated, decapsulated and
 *             redirected to the AF_XDP socket of (port, RX queue);
 *             everything else is XDP_PASS (management, ARP, SSH, …).
 *   access  — every frame is switched: its outer tag (if any) selects the
 *             attachment (port, VID) and is popped, then redirected.
 *   other   — XDP_PASS.
 * Every redirected frame carries struct xvs_meta just before its data.
 * Every decision moves a counter (xvs_abi.h, docs/classifier.md).
 */
#include "lib/common.h"
#include "lib/direct.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/ipv6.h"
#include "lib/vxlan.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* See struct xvs_abi_anchor. */
const volatile struct xvs_abi_anchor xvs_abi = {};

/* Maps a terminal counter to the action it stands for. */
static __always_inline int xvs_action_of(__u32 counter)
{
	switch (counter) {
	case XVS_CNT_PASS_NO_PORT:
	case XVS_CNT_PASS_NOT_VXLAN:
	case XVS_CNT_PASS_NOT_LOCAL:
	case XVS_CNT_PASS_FRAGMENT:
	case XVS_CNT_PASS_IPV6_EXT:
		return XDP_PASS;
	default:
		return XDP_DROP;
	}
}

static __always_inline int xvs_finish(struct xvs_counter_block *cnt, __u32 counter)
{
	return xvs_verdict(cnt, counter, xvs_action_of(counter));
}

/* Prepends *meta with bpf_xdp_adjust_meta and redirects to the socket of the
 * port's RX queue. */
static __always_inline int xvs_deliver(struct xdp_md *ctx, struct xvs_counter_block *cnt,
				       const struct xvs_meta *meta)
{
	struct xvs_meta *m;
	__u32 queue, slot;
	void *data;
	int action;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*m)))
		return xvs_finish(cnt, XVS_CNT_DROP_ADJUST_FAILED);
	data = (void *)(long)ctx->data;
	m = (void *)(long)ctx->data_meta;
	if ((void *)(m + 1) > data)
		return xvs_finish(cnt, XVS_CNT_DROP_ADJUST_FAILED);
	__builtin_memcpy(m, meta, sizeof(*m));

	/* The socket of this port's RX queue (see xvs_xsks in xvs_abi.h). With
	 * no socket in the slot the lookup fails and the flags' low bits,
	 * XDP_DROP, are returned instead of XDP_REDIRECT. */
	queue = ctx->rx_queue_index;
	if (meta->port_index >= XVS_MAX_PORTS || queue >= XVS_MAX_QUEUES)
		return xvs_verdict(cnt, XVS_CNT_REDIRECT_FAILED, XDP_DROP);
	slot = meta->port_index * XVS_MAX_QUEUES + queue;
	action = bpf_redirect_map(&xvs_xsks, slot, XDP_DROP);
	xvs_count(cnt, action == XDP_REDIRECT ? XVS_CNT_REDIRECTED : XVS_CNT_REDIRECT_FAILED);
	return action;
}

static __always_inline int xvs_uplink(struct xdp_md *ctx, struct xvs_counter_block *cnt,
				      const struct xvs_port *port)
{
	void *data = (void *)(long)ctx->data;
	struct xvs_cursor c = { .pos = data, .end = (void *)(long)ctx->data_end };
	struct xvs_outer_ip ip = {};
	struct xvs_vxlan vx = {};
	struct xvs_meta meta = {};
	__u32 res, inner_off, frame_len;
	__be16 proto;
	int tags;

	if (xvs_parse_eth(&c, &proto))
		return xvs_finish(cnt, XVS_CNT_DROP_RUNT);
	tags = xvs_skip_vlans(&c, &proto);
	if (tags < 0)
		return xvs_finish(cnt, XVS_CNT_DROP_TRUNC_VLAN);

	if (proto == bpf_htons(ETH_P_IP))
		res = xvs_parse_ipv4(&c, &ip);
	else if (proto == bpf_htons(ETH_P_IPV6))
		res = xvs_parse_ipv6(&c, &ip);
	else
		res = XVS_CNT_PASS_NOT_VXLAN; /* ARP, a third tag, anything else */
	if (res != XVS_CONTINUE)
		return xvs_finish(cnt, res);

	res = xvs_parse_vxlan(&c, &ip, &vx);
	if (res != XVS_CONTINUE)
		return xvs_finish(cnt, res);

	/* Cut the outer headers and any trailing bytes past the UDP length. */
	inner_off = c.pos - data;
	frame_len = c.end - data;
	if (frame_len > inner_off + vx.inner_len &&
	    bpf_xdp_adjust_tail(ctx, -(int)(frame_len - inner_off - vx.inner_len)))
		return xvs_finish(cnt, XVS_CNT_DROP_ADJUST_FAILED);
	if (bpf_xdp_adjust_head(ctx, (int)inner_off))
		return xvs_finish(cnt, XVS_CNT_DROP_ADJUST_FAILED);
	xvs_count(cnt, ip.decap_counter);

	meta.bd = vx.bd;
	meta.port_index = port->port_index;
	__builtin_memcpy(meta.src_vtep, ip.src.addr, sizeof(meta.src_vtep));
	meta.vni = vx.vni;
	meta.vid = 0;
	meta.flags = XVS_META_F_VXLAN | ip.meta_flags;
	return xvs_deliver(ctx, cnt, &meta);
}

static __always_inline int xvs_access(struct xdp_md *ctx, struct xvs_counter_block *cnt,
				      const struct xvs_port *port)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xvs_cursor c = { .pos = data, .end = data_end };
	struct xvs_attach_key key = { .port_index = port->port_index };
	const struct xvs_config *cfg;
	struct xvs_meta meta = {};
	struct xvs_vlan_hdr *vh;
	__u32 macs[2 * ETH_ALEN / 4];
	__u64 *untagged;
	__be16 proto;
	__u32 *bd;

	if (xvs_parse_eth(&c, &proto))
		return xvs_finish(cnt, XVS_CNT_DROP_RUNT);
	if (xvs_is_vlan(proto)) {
		vh = c.pos;
		if ((void *)(vh + 1) > data_end)
			return xvs_finish(cnt, XVS_CNT_DROP_TRUNC_VLAN);
		key.vid = bpf_ntohs(vh->tci) & 0x0fff;
		meta.flags |= XVS_META_F_TAGGED;
		if (xvs_is_vlan(vh->proto))
			meta.flags |= XVS_META_F_INNER_TAG;
	}
	if (key.vid == 0) {
		/* Untagged or priority-tagged: (port, 0) lives in an array. */
		untagged = bpf_map_lookup_elem(&xvs_untagged, &key.port_index);
		asm volatile(""); /* two lookups, not one on a run-time map */
		if (!untagged || !*untagged)
			return xvs_finish(cnt, XVS_CNT_DROP_UNKNOWN_ATTACHMENT);
		meta.bd = (__u32)*untagged;
	} else {
		/* Tagged: the direct table, else the hash. */
		cfg = xvs_config_get();
		if (!cfg || !xvs_direct_find(&xvs_attach_direct, cfg, cfg->attach_seed,
					     cfg->attach_shift, key.port_index << 12 | key.vid,
					     &meta.bd)) {
			bd = bpf_map_lookup_elem(&xvs_attachments, &key);
			if (!bd)
				return xvs_finish(cnt, XVS_CNT_DROP_UNKNOWN_ATTACHMENT);
			meta.bd = *bd;
		}
	}
	meta.port_index = port->port_index;
	meta.vid = key.vid;

	if (meta.flags & XVS_META_F_TAGGED) {
		/* Pop the outer tag: move the MAC addresses 4 bytes up, drop 4.
		 * Three 32-bit words, not twelve bytes (clang copies a byte
		 * array byte by byte): the verifier allows unaligned packet
		 * access where the CPU does it efficiently (x86-64, arm64). */
		macs[0] = ((__u32 *)data)[0];
		macs[1] = ((__u32 *)data)[1];
		macs[2] = ((__u32 *)data)[2];
		if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct xvs_vlan_hdr)))
			return xvs_finish(cnt, XVS_CNT_DROP_ADJUST_FAILED);
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + sizeof(macs) > data_end)
			return xvs_finish(cnt, XVS_CNT_DROP_ADJUST_FAILED);
		((__u32 *)data)[0] = macs[0];
		((__u32 *)data)[1] = macs[1];
		((__u32 *)data)[2] = macs[2];
		xvs_count(cnt, XVS_CNT_VLAN_POPPED);
	}
	xvs_count(cnt, XVS_CNT_SWITCHED_ACCESS);
	return xvs_deliver(ctx, cnt, &meta);
}

SEC("xdp")
int xvs_classify(struct xdp_md *ctx)
{
	struct xvs_counter_block *cnt = xvs_counters_get();
	__u32 ifindex = ctx->ingress_ifindex;
	struct xvs_port *port;

	/* Small ifindexes (all of them, in practice): an array lookup, which
	 * the verifier inlines; the rest in the hash (see xvs_abi.h). */
	if (ifindex < XVS_PORT_ARRAY_SIZE) {
		port = bpf_map_lookup_elem(&xvs_ports_array, &ifindex);
		/* Keeps clang from merging both lookups into one call on a map
		 * chosen at run time, which the verifier could not inline. */
		asm volatile("");
	} else {
		port = bpf_map_lookup_elem(&xvs_ports, &ifindex);
	}
	if (!port)
		return xvs_finish(cnt, XVS_CNT_PASS_NO_PORT);
	if (port->role == XVS_ROLE_UPLINK)
		return xvs_uplink(ctx, cnt, port);
	if (port->role == XVS_ROLE_ACCESS)
		return xvs_access(ctx, cnt, port);
	return xvs_finish(cnt, XVS_CNT_PASS_NO_PORT);
}
