/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/* Direct-mapped tables in front of the VNI and attachment hashes (see
 * xvs_vni_direct in xvs_abi.h): one multiply, one inlined array lookup. */
#ifndef XVS_LIB_DIRECT_H
#define XVS_LIB_DIRECT_H

#include "common.h"

/* The config entry (always present: an ARRAY entry). */
static __always_inline const struct xvs_config *xvs_config_get(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&xvs_config, &key);
}

/*
 * Looks `key` up in the direct-mapped `table` (seed 0: no table). Returns 1
 * and sets *bd when the key's slot holds it, read while no slot write was in
 * progress (cfg->table_gen even and unchanged across the read); 0 when the
 * caller must ask the hash. x86-64 keeps loads in program order, which the
 * generation check relies on (the compiler is kept from reordering them by
 * the barriers below).
 */
static __always_inline int xvs_direct_find(void *table, const struct xvs_config *cfg, __u32 seed,
					   __u32 shift, __u32 key, __u32 *bd)
{
	const volatile __u32 *gen = &cfg->table_gen;
	__u32 g, idx;
	__u64 *slot, v;

	if (!seed)
		return 0;
	g = *gen;
	if (g & 1)
		return 0;
	idx = (key * seed) >> (shift & 31);
	asm volatile("" ::: "memory");
	slot = bpf_map_lookup_elem(table, &idx);
	asm volatile(""); /* one lookup per map: each stays inlined */
	if (!slot)
		return 0;
	v = *(volatile __u64 *)slot;
	asm volatile("" ::: "memory");
	if (*gen != g || (__u32)v != (key | XVS_DIRECT_VALID))
		return 0;
	*bd = v >> 32;
	return 1;
}

#endif /* XVS_LIB_DIRECT_H */
