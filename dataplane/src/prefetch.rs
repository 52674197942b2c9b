//! A software prefetch, for the places that know which cache lines the next
//! frames will need before they need them (the worker's received batch, the
//! FDB slots of its MACs).

/// Asks the CPU to start loading the cache line at `p` into every cache
/// level, without waiting for it; a no-op off x86-64.
#[inline(always)]
pub(crate) fn prefetch_read<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into
    // the program, whatever the address, so any pointer value is sound.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
