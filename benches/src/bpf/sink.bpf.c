// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * xvs benchmark sink: counts every frame that arrives and drops it.
 *
 * Per CPU (no atomics on the hot path), one slot per class (sink.h): all
 * frames and bytes, then exactly one of VXLAN / other IPv4 UDP / other, so
 * a run can count only the frames of the shape it sent and ignore the
 * neighbour discovery and ARP that an interface carries besides.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sink.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* The UDP destination port that makes a frame VXLAN (set before load). */
const volatile __u16 vxlan_port = 4789;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XVS_SINK_NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} xvs_sink_counters SEC(".maps");

static __always_inline void bump(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&xvs_sink_counters, &slot);

	if (v)
		*v += n;
}

/* The class of a frame: VXLAN, other IPv4 UDP, or other. */
static __always_inline __u32 classify(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	__u8 *vxlan;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XVS_SINK_OTHER;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return XVS_SINK_OTHER;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return XVS_SINK_OTHER;
	if (udp->dest != bpf_htons(vxlan_port))
		return XVS_SINK_UDP;
	vxlan = (void *)(udp + 1);
	if ((void *)(vxlan + 8) > data_end || !(vxlan[0] & 0x08))
		return XVS_SINK_OTHER;
	return XVS_SINK_VXLAN;
}

SEC("xdp")
int xvs_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	bump(XVS_SINK_FRAMES, 1);
	bump(XVS_SINK_BYTES, (__u64)(data_end - data));
	bump(classify(data, data_end), 1);
	return XDP_DROP;
}
