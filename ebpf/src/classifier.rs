//! Opening, checking and loading the skeleton: [`Classifier`] owns the
//! loaded program and its maps.
//!
//! open → check map layouts → load (verifier log captured) → write the
//! default config. Configuration lives in `maps.rs`, attaching in
//! `attach.rs`, `BPF_PROG_TEST_RUN` in `test_run.rs`.

use std::ffi::c_char;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr::NonNull;
use std::sync::Mutex;

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{AsRawLibbpf as _, OpenObject};

use crate::abi::VXLAN_PORT_DEFAULT;
use crate::error::{Error, Result};
use crate::maps;
use crate::skel::{OpenXvsXdpSkel, XvsXdpSkel, XvsXdpSkelBuilder};

/// Size of the buffer that receives the verifier's log on a failed load.
const VERIFIER_LOG_SIZE: usize = 1 << 20;

/// The loaded XDP classifier: its program and config maps.
///
/// Loading does not attach it anywhere; see [`Classifier::attach`]. Every
/// [`crate::Attachment`] keeps the program alive on its own, so dropping the
/// `Classifier` only gives up the ability to change its maps.
pub struct Classifier {
    // Borrows `_storage`'s allocation: dropped by hand first (see Drop).
    skel: ManuallyDrop<XvsXdpSkel<'static>>,
    // Held only to be freed, after `skel`, when the classifier drops.
    _storage: ObjectStorage,
    // What was written to xvs_config and the direct-mapped tables.
    pub(crate) tables: Mutex<maps::Tables>,
}

// SAFETY: the skeleton is Send + Sync (the generated code says so: libbpf
// objects have no thread affinity) and `storage` is only an allocation this
// value owns exclusively and never touches except on drop.
unsafe impl Send for Classifier {}
// SAFETY: shared access only issues map syscalls through `&self`, which the
// kernel serialises; see the Send impl for the storage.
unsafe impl Sync for Classifier {}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("program", &self.program().name())
            .finish_non_exhaustive()
    }
}

impl Classifier {
    /// Opens the embedded BPF object, checks every map's key and value size
    /// against the Rust ABI, loads it (the verifier's log is returned in
    /// [`Error::Load`] on failure) and sets the VXLAN port to 4789.
    pub fn load() -> Result<Classifier> {
        let storage = ObjectStorage::new();
        // SAFETY: the skeleton built on this slot is stored next to
        // `storage` and always dropped before it (locals drop in reverse
        // order here; `Classifier::drop` does it explicitly).
        let slot = unsafe { storage.slot() };
        let open: OpenXvsXdpSkel<'static> = XvsXdpSkelBuilder::default()
            .open(slot)
            .map_err(|source| Error::Open { source })?;
        maps::check_layout(&open.maps)?;

        let mut log = vec![0u8; VERIFIER_LOG_SIZE];
        let prog = open.progs.xvs_classify.as_libbpf_object().as_ptr();
        // SAFETY: `prog` is a valid program of the open object; `log`
        // outlives the load below, which is the only user of the buffer
        // (libbpf writes the verifier log into it only when loading fails
        // at log level 0).
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_program__set_log_buf(
                prog,
                log.as_mut_ptr().cast::<c_char>(),
                log.len() as _,
            )
        };
        debug_assert_eq!(rc, 0);
        let loaded = open.load().map_err(|source| Error::Load {
            log: log_text(&log),
            source,
        });
        let skel = loaded?;
        let classifier = Classifier {
            skel: ManuallyDrop::new(skel),
            _storage: storage,
            tables: Mutex::default(),
        };
        classifier.set_vxlan_port(VXLAN_PORT_DEFAULT)?;
        Ok(classifier)
    }

    pub(crate) fn skel(&self) -> &XvsXdpSkel<'static> {
        &self.skel
    }

    pub(crate) fn program(&self) -> &libbpf_rs::ProgramMut<'static> {
        &self.skel.progs.xvs_classify
    }

    /// The program's kernel id (as `bpftool prog` and `ip link` show it).
    pub fn program_id(&self) -> u32 {
        use std::os::fd::AsFd as _;
        libbpf_rs::Program::id_from_fd(self.program().as_fd()).unwrap_or(0)
    }
}

impl Drop for Classifier {
    fn drop(&mut self) {
        // SAFETY: `skel` is never used again; it is dropped before `_storage`
        // (fields drop after this function returns), which it borrows.
        unsafe { ManuallyDrop::drop(&mut self.skel) };
    }
}

/// The heap slot the skeleton keeps its libbpf object in; freed on drop.
struct ObjectStorage(NonNull<MaybeUninit<OpenObject>>);

impl ObjectStorage {
    fn new() -> Self {
        ObjectStorage(NonNull::from(Box::leak(Box::new(MaybeUninit::uninit()))))
    }

    /// # Safety
    /// The reference must not be used after `self` is dropped, and must be
    /// the only reference to the slot.
    unsafe fn slot(&self) -> &'static mut MaybeUninit<OpenObject> {
        // SAFETY: the pointer came from a live Box that only this value
        // frees; exclusivity and lifetime are the caller's contract.
        unsafe { &mut *self.0.as_ptr() }
    }
}

impl Drop for ObjectStorage {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::leak in `new` and is freed only
        // here. The slot is MaybeUninit, so this frees memory without
        // dropping an object: the skeleton that owned it already did.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// The NUL-terminated text libbpf wrote into a log buffer.
fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).trim_end().to_owned()
}
