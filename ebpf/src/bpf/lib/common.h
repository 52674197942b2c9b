/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/* Maps, counters and the small helpers every protocol header uses. */
#ifndef XVS_LIB_COMMON_H
#define XVS_LIB_COMMON_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../xvs_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVS_MAX_PORTS);
	__type(key, __u32); /* ifindex */
	__type(value, struct xvs_port);
} xvs_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XVS_PORT_ARRAY_SIZE);
	__type(key, __u32); /* ifindex < XVS_PORT_ARRAY_SIZE */
	__type(value, struct xvs_port);
} xvs_ports_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVS_MAX_VTEPS);
	__type(key, struct xvs_addr);
	__type(value, __u32);
} xvs_local_vteps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_addr); /* all zero: no hint */
} xvs_vtep_hint SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVS_MAX_VNIS);
	__type(key, __u32); /* VNI */
	__type(value, __u32); /* bridge domain */
} xvs_vnis SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XVS_MAX_ATTACHMENTS);
	__type(key, struct xvs_attach_key);
	__type(value, __u32); /* bridge domain */
} xvs_attachments SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XVS_MAX_PORTS);
	__type(key, __u32);   /* port_index */
	__type(value, __u64); /* 0, or XVS_UNTAGGED_PRESENT | bridge domain */
} xvs_untagged SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_config);
} xvs_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XVS_DIRECT_SLOTS);
	__type(key, __u32);   /* (vni * vni_seed) >> vni_shift */
	__type(value, __u64); /* 0, or bd << 32 | XVS_DIRECT_VALID | vni */
} xvs_vni_direct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XVS_DIRECT_SLOTS);
	__type(key, __u32);   /* (key * attach_seed) >> attach_shift, key = port_index << 12 | vid */
	__type(value, __u64); /* 0, or bd << 32 | XVS_DIRECT_VALID | key */
} xvs_attach_direct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XVS_XSK_SLOTS);
	__type(key, __u32); /* port_index * XVS_MAX_QUEUES + rx_queue_index */
	__type(value, __u32); /* AF_XDP socket fd */
} xvs_xsks SEC(".maps");

/* One CPU's counters (see xvs_counters in xvs_abi.h). */
struct xvs_counter_block {
	__u64 c[XVS_CNT_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xvs_counter_block);
} xvs_counters SEC(".maps");

/* This CPU's counters: one inlined lookup per frame (never NULL in
 * practice: key 0 of an array always exists). */
static __always_inline struct xvs_counter_block *xvs_counters_get(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&xvs_counters, &key);
}

static __always_inline void xvs_count(struct xvs_counter_block *cnt, __u32 c)
{
	if (cnt && c < XVS_CNT_MAX)
		cnt->c[c] += 1; /* per-CPU block: no atomics needed */
}

/* Counts `c` and returns `action`: the one way a decision leaves a parser. */
static __always_inline int xvs_verdict(struct xvs_counter_block *cnt, __u32 c, int action)
{
	xvs_count(cnt, c);
	return action;
}

/* A parse position; every read is bounds-checked against data_end first. */
struct xvs_cursor {
	void *pos;
	void *end;
};

#endif /* XVS_LIB_COMMON_H */
