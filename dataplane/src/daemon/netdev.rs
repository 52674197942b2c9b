//! An interface's Ethernet address, MTU and flags, read with `ioctl`s on a socket
//! of the calling thread's network namespace (so it works on a thread that
//! entered a namespace with `setns`, where `/sys/class/net` would still show
//! the mount namespace's view).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::types::MacAddr;

/// Why an interface could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    /// The name does not fit an interface name (15 bytes, no NUL).
    #[error("bad interface name {0:?}")]
    BadName(String),
    /// The kernel refused (typically: no such interface).
    #[error("interface {name}: {op}: {source}")]
    Io {
        /// Interface name.
        name: String,
        /// What was asked.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn ifreq(name: &str) -> Result<libc::ifreq, NetdevError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(NetdevError::BadName(name.to_owned()));
    }
    // SAFETY: ifreq is plain old data (a name and a union of integers and
    // byte arrays); all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

fn ioctl(name: &str, op: &'static str, request: libc::Ioctl) -> Result<libc::ifreq, NetdevError> {
    let mut req = ifreq(name)?;
    let err = |source| NetdevError::Io {
        name: name.to_owned(),
        op,
        source,
    };
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a valid, NUL-terminated ifreq that the kernel reads
    // and writes for these SIOCGIF* requests; it outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request, &mut req) };
    if rc < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(req)
}

/// The interface's MTU.
pub fn mtu(name: &str) -> Result<u32, NetdevError> {
    let req = ioctl(name, "SIOCGIFMTU", libc::SIOCGIFMTU)?;
    // SAFETY: SIOCGIFMTU fills the `ifru_mtu` member of the union.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(mtu.max(0) as u32)
}

/// The interface's flags (`IFF_UP`, `IFF_RUNNING`, …).
pub fn flags(name: &str) -> Result<i32, NetdevError> {
    let req = ioctl(name, "SIOCGIFFLAGS", libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS fills the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    Ok(i32::from(flags) & 0xffff)
}

/// The interface's Ethernet address.
pub fn mac(name: &str) -> Result<MacAddr, NetdevError> {
    let req = ioctl(name, "SIOCGIFHWADDR", libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR fills the `ifru_hwaddr` member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut m = [0u8; 6];
    for (d, s) in m.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(MacAddr(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_a_zero_mac_and_an_mtu() {
        assert_eq!(mac("lo").unwrap(), MacAddr::ZERO);
        assert!(mtu("lo").unwrap() >= 1500);
    }

    #[test]
    fn unknown_and_bad_names_are_errors() {
        assert!(matches!(
            mtu("xvs-no-such-if"),
            Err(NetdevError::Io { .. }) | Err(NetdevError::BadName(_))
        ));
        assert!(matches!(mac(""), Err(NetdevError::BadName(_))));
        assert!(matches!(mac("a\0b"), Err(NetdevError::BadName(_))));
    }
}
