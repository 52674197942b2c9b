//! Attaching the classifier to an interface with a bpf_link.
//!
//! A bpf_link (`BPF_LINK_CREATE`, attach type `BPF_XDP`) belongs to its file
//! descriptor: when the last descriptor closes — [`Attachment`] dropped, or
//! the process killed, even with SIGKILL — the kernel detaches the program.
//! Netlink attachment (`bpf_xdp_attach`) would outlive the process instead,
//! so it is not used.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd};

use libbpf_rs::libbpf_sys;

use crate::classifier::Classifier;
use crate::error::{Error, Result};

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XdpMode {
    /// Driver (native) mode: the program runs in the driver's RX path.
    Native,
    /// Generic (SKB) mode: runs after the kernel built an skb; works on
    /// every interface, slower.
    Generic,
    /// Native, falling back to generic where the driver refuses native.
    Auto,
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
            XdpMode::Auto => "auto",
        })
    }
}

impl std::str::FromStr for XdpMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<XdpMode> {
        match s {
            "native" | "drv" => Ok(XdpMode::Native),
            "generic" | "skb" => Ok(XdpMode::Generic),
            "auto" => Ok(XdpMode::Auto),
            other => Err(Error::InvalidArgument {
                what: "XDP mode (native | generic | auto)",
                value: other.to_owned(),
            }),
        }
    }
}

/// An attachment's bpf_link as the kernel reports it ([`Attachment::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// The link's id (`bpftool link show`).
    pub link_id: u32,
    /// The program it runs.
    pub prog_id: u32,
    /// The interface it is attached to; 0 once detached.
    pub ifindex: u32,
}

impl LinkStatus {
    /// Still attached to `ifindex`, running program `prog_id`.
    pub fn is_attached(&self, ifindex: u32, prog_id: u32) -> bool {
        self.ifindex == ifindex && self.prog_id == prog_id
    }
}

/// The classifier attached to one interface. Dropping it detaches.
#[derive(Debug)]
pub struct Attachment {
    link: OwnedFd,
    iface: String,
    ifindex: u32,
    mode: XdpMode,
}

impl Attachment {
    /// The interface's name (or `ifindex N` when attached by index).
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The mode actually in use: [`XdpMode::Native`] or [`XdpMode::Generic`].
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// The bpf_link's kernel id (`bpftool link show`).
    pub fn link_id(&self) -> Option<u32> {
        self.status().ok().map(|s| s.link_id)
    }

    /// What the kernel says about the link now (`BPF_OBJ_GET_INFO_BY_FD`,
    /// which needs no capability). A link detached from under us
    /// (`bpftool link detach`, or its interface deleted) reports ifindex 0.
    pub fn status(&self) -> io::Result<LinkStatus> {
        let mut info = libbpf_sys::bpf_link_info::default();
        let mut len = std::mem::size_of_val(&info) as u32;
        // SAFETY: `info` is a writable bpf_link_info of `len` bytes and the
        // fd is a live bpf_link owned by `self`.
        let rc = unsafe {
            libbpf_sys::bpf_link_get_info_by_fd(self.link.as_raw_fd(), &mut info, &mut len)
        };
        if rc < 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        // SAFETY: the kernel filled the `xdp` member of the union: this fd
        // is an XDP link (created by `link_create` with `BPF_XDP`).
        let ifindex = unsafe { info.__bindgen_anon_1.xdp.ifindex };
        Ok(LinkStatus {
            link_id: info.id,
            prog_id: info.prog_id,
            ifindex,
        })
    }

    /// Detaches now (same as dropping).
    pub fn detach(self) {}
}

/// The ifindex of `iface` in the calling thread's network namespace.
pub fn ifindex_of(iface: &str) -> Result<u32> {
    let no_such = || Error::NoSuchInterface {
        iface: iface.to_owned(),
    };
    let name = CString::new(iface).map_err(|_| no_such())?;
    // SAFETY: `name` is a valid NUL-terminated string for the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(no_such()),
        index => Ok(index),
    }
}

impl Classifier {
    /// Attaches to interface `iface` (looked up in the calling thread's
    /// network namespace) in `mode`. The returned [`Attachment`] reports the
    /// mode chosen and detaches when dropped.
    pub fn attach(&self, iface: &str, mode: XdpMode) -> Result<Attachment> {
        let ifindex = ifindex_of(iface)?;
        self.attach_index(ifindex, iface.to_owned(), mode)
    }

    /// Attaches to the interface with index `ifindex`; see [`Classifier::attach`].
    pub fn attach_ifindex(&self, ifindex: u32, mode: XdpMode) -> Result<Attachment> {
        self.attach_index(ifindex, format!("ifindex {ifindex}"), mode)
    }

    fn attach_index(&self, ifindex: u32, iface: String, mode: XdpMode) -> Result<Attachment> {
        let try_mode = |m: XdpMode| -> Result<Attachment> {
            let link = self.link_create(ifindex, m).map_err(|source| {
                if source.raw_os_error() == Some(libc::EOPNOTSUPP) {
                    Error::ModeNotSupported {
                        iface: iface.clone(),
                        mode: m,
                        source,
                    }
                } else if source.raw_os_error() == Some(libc::ENODEV) {
                    Error::NoSuchInterface {
                        iface: iface.clone(),
                    }
                } else {
                    Error::Attach {
                        iface: iface.clone(),
                        mode: m,
                        source,
                    }
                }
            })?;
            tracing::debug!(iface = %iface, mode = %m, "XDP attached");
            Ok(Attachment {
                link,
                iface: iface.clone(),
                ifindex,
                mode: m,
            })
        };
        match mode {
            XdpMode::Native | XdpMode::Generic => try_mode(mode),
            XdpMode::Auto => match try_mode(XdpMode::Native) {
                Ok(a) => Ok(a),
                // Busy (another program attached) or gone: generic would
                // fail the same way, so report the real cause.
                Err(e @ (Error::NoSuchInterface { .. } | Error::Attach { .. })) if is_final(&e) => {
                    Err(e)
                }
                Err(native) => {
                    tracing::info!(iface = %iface, error = %native, "native XDP refused, using generic");
                    try_mode(XdpMode::Generic)
                }
            },
        }
    }

    fn link_create(&self, ifindex: u32, mode: XdpMode) -> io::Result<OwnedFd> {
        let flags = match mode {
            XdpMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
            XdpMode::Auto => 0,
        };
        let opts = libbpf_sys::bpf_link_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
            flags,
            ..Default::default()
        };
        let prog_fd = self.program().as_fd().as_raw_fd();
        // SAFETY: `prog_fd` is the loaded program's fd, alive for the call;
        // `opts` is a correctly sized, initialised options struct.
        let fd = unsafe {
            libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, libbpf_sys::BPF_XDP, &opts)
        };
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(-fd));
        }
        // SAFETY: a non-negative return is a new link fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Errors that native → generic fallback cannot cure.
fn is_final(e: &Error) -> bool {
    match e {
        Error::NoSuchInterface { .. } => true,
        Error::Attach { source, .. } => matches!(
            source.raw_os_error(),
            Some(libc::EBUSY | libc::EEXIST | libc::EPERM)
        ),
        _ => false,
    }
}
