/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * xvs_abi.h — every type and index that crosses the C/Rust line.
 *
 * The Rust mirror is ebpf/src/abi.rs. It asserts, at compile time, that its
 * #[repr(C)] types have the sizes and field offsets of the types below (as
 * clang laid them out, read back from the object's BTF by the skeleton
 * generator), and the loader checks every map's key/value size before load.
 *
 * Rules: fixed-width types only; explicit padding fields; every struct a
 * multiple of 4 bytes; never reorder or resize a field ("do not change
 * offset"), append instead and bump the size asserts on both sides.
 * Multi-byte integers are in host byte order unless the name ends in _be;
 * addresses are byte arrays in network order.
 */
#ifndef XVS_ABI_H
#define XVS_ABI_H

#include <linux/types.h>

/* Sizes and defaults (an enum, so that they are in the BTF the Rust side checks). */
enum xvs_limits {
	XVS_VXLAN_PORT_DEFAULT = 4789, /* IANA, RFC 7348 */
	XVS_MAX_PORTS = 256,           /* port_index < XVS_MAX_PORTS */
	XVS_MAX_VTEPS = 64,
	XVS_MAX_VNIS = 16384,
	XVS_MAX_ATTACHMENTS = 16384,
	XVS_MAX_QUEUES = 64,           /* rx_queue_index < XVS_MAX_QUEUES */
	XVS_XSK_SLOTS = XVS_MAX_PORTS * XVS_MAX_QUEUES,
	XVS_PORT_ARRAY_SIZE = 4096,    /* ifindex < this: port in xvs_ports_array */
	XVS_DIRECT_SLOTS = 65536,      /* entries of xvs_vni_direct / xvs_attach_direct */
};

/* xvs_port.role */
enum xvs_port_role {
	XVS_ROLE_NONE = 0,   /* treated like an unknown interface: XDP_PASS */
	XVS_ROLE_UPLINK = 1, /* underlay: VXLAN decapsulated, rest passed */
	XVS_ROLE_ACCESS = 2, /* every frame switched */
};

/*
 * Maps xvs_ports_array (ARRAY, XVS_PORT_ARRAY_SIZE entries, index ifindex)
 * and xvs_ports (HASH, key __u32 ifindex) → value struct xvs_port. An
 * ifindex below XVS_PORT_ARRAY_SIZE is looked up in the array only (role 0:
 * not a port), any other in the hash: one array lookup per frame instead of
 * a hash lookup on the usual small ifindexes.
 * Size 8.
 */
struct xvs_port {
	__u32 role;       /* offset 0: enum xvs_port_role; do not change offset */
	__u32 port_index; /* offset 4: xvs's own port number, < XVS_MAX_PORTS; do not change offset */
};

/*
 * Map xvs_local_vteps: key struct xvs_addr (this node's VTEP address) →
 * value __u32 (unused, write 1).
 * Size 16. IPv4 addresses are stored v4-mapped: ::ffff:a.b.c.d.
 */
struct xvs_addr {
	__u8 addr[16]; /* offset 0: network byte order; do not change offset */
};

/*
 * Map xvs_vtep_hint: ARRAY, one entry at key 0 → struct xvs_addr: one of
 * the addresses in xvs_local_vteps (all zero: none), compared before the
 * hash lookup so that the usual single VTEP costs no hash. Always a copy of
 * an entry of xvs_local_vteps, never more.
 */

/*
 * Map xvs_vnis: key __u32 VNI (host order, 24 bits used) → value
 * __u32 bridge domain. Authoritative: every configured VNI is here.
 *
 * Map xvs_vni_direct: ARRAY, XVS_DIRECT_SLOTS entries → __u64 slot, a
 * direct-mapped cache in front of xvs_vnis that the verifier inlines. The
 * VNI's slot is (vni * xvs_config.vni_seed) >> xvs_config.vni_shift
 * (32-bit multiply); the slot holds 0 (empty) or
 * (__u64)bd << 32 | XVS_DIRECT_VALID | vni and counts only if it holds
 * this VNI. Userspace picks the seed and size (shift = 32 − log2 slots in
 * use) so that configured VNIs get slots of their own; a VNI without one
 * (its slot taken, or vni_seed 0: no table) is looked up in xvs_vnis.
 * Slot writes are bracketed by xvs_config.table_gen going odd, then even
 * (a sequence lock): a lookup that sees it odd, or changed across the slot
 * read, uses the hash instead, so a half-written slot is never believed.
 *
 * Map xvs_attach_direct: the same for xvs_attachments, key
 * port_index << 12 | vid, parameters attach_seed / attach_shift.
 */
#define XVS_DIRECT_VALID 0x80000000u

/*
 * Map xvs_attachments: key struct xvs_attach_key → value __u32 bridge domain,
 * for VIDs 1 … 4095. Size 8.
 *
 * Map xvs_untagged: ARRAY, XVS_MAX_PORTS entries, index port_index → value
 * __u64: the attachment (port, VID 0), which untagged and priority-tagged
 * frames select — 0 none, else XVS_UNTAGGED_PRESENT | bridge domain. An
 * array lookup (inlined by the verifier) on the hottest path instead of a
 * hash lookup.
 */
#define XVS_UNTAGGED_PRESENT (1ULL << 32)
struct xvs_attach_key {
	__u32 port_index; /* offset 0: xvs_port.port_index; do not change offset */
	__u16 vid;        /* offset 4: 0 … 4095; do not change offset */
	__u16 _pad;       /* offset 6: must be zero (it is part of the hash key) */
};

/*
 * Map xvs_config: ARRAY, one entry at key 0.
 * Size 24.
 */
struct xvs_config {
	__u16 vxlan_port;   /* offset 0: UDP destination port, host order; 0 means 4789; do not change offset */
	__u16 _pad0;        /* offset 2 */
	__u32 table_gen;    /* offset 4: odd while direct-table slots are written; do not change offset */
	__u32 vni_seed;     /* offset 8: xvs_vni_direct multiplier (odd), 0: no table; do not change offset */
	__u32 vni_shift;    /* offset 12: 32 − log2(slots in use); do not change offset */
	__u32 attach_seed;  /* offset 16: xvs_attach_direct multiplier, 0: no table; do not change offset */
	__u32 attach_shift; /* offset 20: do not change offset */
};

/*
 * Map xvs_xsks: XSKMAP, key __u32 slot → value __u32 AF_XDP socket fd (the
 * kernel keeps its own reference to the socket).
 *
 * slot = port_index * XVS_MAX_QUEUES + rx_queue_index. An AF_XDP socket is
 * bound to one (interface, queue) and the kernel refuses frames from any
 * other, so each port has its own row of queue slots: the uplink's queue 0
 * and an access port's queue 0 are different sockets.
 */

/* xvs_meta.flags */
#define XVS_META_F_VXLAN 0x0001     /* decapsulated from an uplink; src_vtep and vni valid */
#define XVS_META_F_VTEP_IPV6 0x0002 /* src_vtep is an IPv6 address (else v4-mapped IPv4) */
#define XVS_META_F_TAGGED 0x0004    /* access frame arrived with a tag, now popped (vid may be 0) */
#define XVS_META_F_INNER_TAG 0x0008 /* frame still starts with an 802.1Q/802.1ad tag (QinQ) */

/*
 * Metadata written with bpf_xdp_adjust_meta immediately before the frame of
 * every redirected frame (in the UMEM: the 32 bytes before the RX
 * descriptor's address). Size 32: the kernel's maximum metadata length.
 */
struct xvs_meta {
	__u32 bd;           /* offset 0: bridge domain; do not change offset */
	__u32 port_index;   /* offset 4: ingress xvs port index; do not change offset */
	__u8 src_vtep[16];  /* offset 8: outer source address (v4-mapped or IPv6), zero on access; do not change offset */
	__u32 vni;          /* offset 24: VNI of a decapsulated frame, else 0; do not change offset */
	__u16 vid;          /* offset 28: VID of the popped access tag, else 0; do not change offset */
	__u16 flags;        /* offset 30: XVS_META_F_*; do not change offset */
};

/*
 * Map xvs_counters: PERCPU_ARRAY, one entry at key 0 → value
 * __u64[XVS_CNT_MAX] per CPU, indexed by enum xvs_counter: the program
 * looks its CPU's block up once per frame, then counts with plain adds.
 * One slot per decision; a frame moves one to three slots (see
 * docs/classifier.md). Append new counters before XVS_CNT_MAX only.
 */
enum xvs_counter {
	XVS_CNT_PASS_NO_PORT = 0,          /* interface not in xvs_ports */
	XVS_CNT_PASS_NOT_VXLAN = 1,        /* uplink: not IP/UDP to the VXLAN port, or >2 VLAN tags */
	XVS_CNT_PASS_NOT_LOCAL = 2,        /* uplink: VXLAN port, but not to a local VTEP address */
	XVS_CNT_PASS_FRAGMENT = 3,         /* uplink: IPv4 UDP fragment (MF or offset ≠ 0) */
	XVS_CNT_PASS_IPV6_EXT = 4,         /* uplink: IPv6 with an extension header */
	XVS_CNT_DECAP_V4 = 5,              /* uplink: VXLAN over IPv4 decapsulated */
	XVS_CNT_DECAP_V6 = 6,              /* uplink: VXLAN over IPv6 decapsulated */
	XVS_CNT_VLAN_POPPED = 7,           /* access: a tag was popped */
	XVS_CNT_SWITCHED_ACCESS = 8,       /* access: frame mapped to an attachment */
	XVS_CNT_REDIRECTED = 9,            /* bpf_redirect_map found a socket */
	XVS_CNT_REDIRECT_FAILED = 10,      /* no socket for the queue: dropped */
	XVS_CNT_DROP_RUNT = 11,            /* frame < 14 bytes */
	XVS_CNT_DROP_TRUNC_VLAN = 12,      /* frame ends inside a VLAN tag */
	XVS_CNT_DROP_TRUNC_IPV4 = 13,      /* frame ends inside the IPv4 header (incl. options) */
	XVS_CNT_DROP_TRUNC_IPV6 = 14,      /* frame ends inside the IPv6 header */
	XVS_CNT_DROP_BAD_IP_VERSION = 15,  /* version field ≠ the EtherType's */
	XVS_CNT_DROP_BAD_IHL = 16,         /* IPv4 IHL < 5 */
	XVS_CNT_DROP_BAD_IP_LEN = 17,      /* IPv4 total length < IHL*4 or > frame; IPv6 payload length > frame */
	XVS_CNT_DROP_TRUNC_UDP = 18,       /* IP payload shorter than a UDP header */
	XVS_CNT_DROP_BAD_UDP_LEN = 19,     /* UDP length < 8 or > IP payload */
	XVS_CNT_DROP_TRUNC_VXLAN = 20,     /* UDP payload shorter than the VXLAN header */
	XVS_CNT_DROP_TRUNC_INNER = 21,     /* VXLAN payload shorter than an Ethernet header */
	XVS_CNT_DROP_VXLAN_NO_I_FLAG = 22, /* VXLAN I flag clear */
	XVS_CNT_DROP_UNKNOWN_VNI = 23,     /* VNI not in xvs_vnis */
	XVS_CNT_DROP_UNKNOWN_ATTACHMENT = 24, /* access: (port, VID) not in xvs_attachments */
	XVS_CNT_DROP_ADJUST_FAILED = 25,   /* bpf_xdp_adjust_head/tail/meta refused */
	XVS_CNT_MAX = 26,
};

/*
 * Anchor: one read-only global per ABI type, so that clang emits their BTF
 * and the skeleton generator emits Rust definitions that abi.rs checks its
 * mirrors against. Never read by the program.
 */
struct xvs_abi_anchor {
	struct xvs_port port;
	struct xvs_addr addr;
	struct xvs_attach_key attach_key;
	struct xvs_config config;
	struct xvs_meta meta;
	enum xvs_counter counter;
	enum xvs_port_role role;
	enum xvs_limits limits;
};

#endif /* XVS_ABI_H */
