/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * ABI of the benchmark sink (sink.bpf.c): the slots of its per-CPU counter
 * array. Mirrored in Rust by benches/src/bin/xvs-sink/main.rs (`Slot`);
 * do not renumber.
 */
#ifndef XVS_SINK_H
#define XVS_SINK_H

enum xvs_sink_slot {
	XVS_SINK_FRAMES = 0, /* every frame seen */
	XVS_SINK_BYTES = 1, /* their bytes (no FCS) */
	XVS_SINK_VXLAN = 2, /* IPv4/UDP to the VXLAN port, I flag set */
	XVS_SINK_UDP = 3, /* other IPv4/UDP (plain, decapsulated frames) */
	XVS_SINK_OTHER = 4, /* everything else (ARP, IPv6, runts, ...) */
	XVS_SINK_NR_SLOTS = 5,
};

#endif
