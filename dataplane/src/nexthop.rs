//! Next-hop resolution for remote VTEPs from the kernel's routing and
//! neighbour tables, over rtnetlink.
//!
//! To encapsulate towards a remote VTEP the dataplane needs the outgoing
//! interface and the Ethernet address of the next hop (the VTEP itself when
//! it is on-link, else the route's gateway). [`Resolver::resolve`] asks the
//! kernel for the route (`RTM_GETROUTE`, the same lookup as `ip route get`)
//! and then for the neighbour entry (`RTM_GETNEIGH`). When the neighbour is
//! not (yet) known it asks the kernel to resolve it (`RTM_NEWNEIGH` with
//! `NTF_USE`, which sends the ARP request or neighbour solicitation) and
//! reports [`Resolution::Pending`]; the caller counts its drops meanwhile and
//! asks again when [`ChangeWatcher`] reports that the tables changed.
//!
//! Not for the per-packet path: every call is a netlink round trip.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use thiserror::Error;

/// Where frames for one remote VTEP leave: interface and next-hop MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Outgoing interface.
    pub ifindex: u32,
    /// Gateway the route goes through, `None` when the VTEP is on-link.
    pub gateway: Option<IpAddr>,
    /// Ethernet address of the next hop.
    pub mac: [u8; 6],
}

/// Outcome of one resolution attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The next hop is known.
    Resolved(NextHop),
    /// The route is known but the neighbour is not (yet); resolution was
    /// triggered.
    Pending {
        /// Outgoing interface.
        ifindex: u32,
        /// The address being resolved (gateway or the VTEP itself).
        neighbour: IpAddr,
    },
}

/// Why a next hop could not be resolved.
#[derive(Debug, Error)]
pub enum NexthopError {
    /// The netlink socket could not be opened or used.
    #[error("rtnetlink socket: {0}")]
    Socket(#[source] io::Error),
    /// The kernel has no usable unicast route to the address.
    #[error("no route to remote VTEP {0}")]
    NoRoute(IpAddr),
    /// The kernel refused a request.
    #[error("rtnetlink {op} for {addr}: {source}")]
    Kernel {
        /// What was asked (`get route`, `get neighbour`, `resolve neighbour`).
        op: &'static str,
        /// The address concerned.
        addr: IpAddr,
        /// The errno the kernel answered.
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be decoded.
    #[error("rtnetlink answer does not decode: {0}")]
    Decode(String),
}

/// A synchronous rtnetlink client for route and neighbour look-ups.
pub struct Resolver {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").field("seq", &self.seq).finish()
    }
}

impl Resolver {
    /// Opens a netlink socket in the calling thread's network namespace.
    pub fn new() -> Result<Self, NexthopError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NexthopError::Socket)?;
        sock.bind_auto().map_err(NexthopError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(NexthopError::Socket)?;
        Ok(Resolver {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Resolves the next hop towards `vtep`, triggering neighbour resolution
    /// when the kernel does not know the next hop's MAC yet.
    pub fn resolve(&mut self, vtep: IpAddr) -> Result<Resolution, NexthopError> {
        let (ifindex, gateway) = self.route(vtep)?;
        let neighbour = gateway.unwrap_or(vtep);
        match self.neighbour(ifindex, neighbour)? {
            Some(mac) => Ok(Resolution::Resolved(NextHop {
                ifindex,
                gateway,
                mac,
            })),
            None => {
                self.solicit(ifindex, neighbour)?;
                Ok(Resolution::Pending { ifindex, neighbour })
            }
        }
    }

    /// Looks up the route to `dst`: outgoing interface and gateway.
    pub fn route(&mut self, dst: IpAddr) -> Result<(u32, Option<IpAddr>), NexthopError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(dst);
        msg.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        let replies = self
            .request(RouteNetlinkMessage::GetRoute(msg), NLM_F_REQUEST)
            .map_err(|e| match e {
                // Unreachable, blackhole (EINVAL) and prohibit (EACCES) routes.
                NexthopError::Kernel { source, .. }
                    if matches!(
                        source.raw_os_error(),
                        Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EINVAL | libc::EACCES)
                    ) =>
                {
                    NexthopError::NoRoute(dst)
                }
                other => with_op(other, "get route", dst),
            })?;
        for reply in replies {
            let RouteNetlinkMessage::NewRoute(route) = reply else {
                continue;
            };
            if route.header.kind != RouteType::Unicast {
                return Err(NexthopError::NoRoute(dst));
            }
            let mut oif = None;
            let mut gateway = None;
            for attr in &route.attributes {
                match attr {
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    RouteAttribute::Gateway(RouteAddress::Inet(a)) => gateway = Some((*a).into()),
                    RouteAttribute::Gateway(RouteAddress::Inet6(a)) => gateway = Some((*a).into()),
                    _ => {}
                }
            }
            return oif.map(|i| (i, gateway)).ok_or(NexthopError::NoRoute(dst));
        }
        Err(NexthopError::NoRoute(dst))
    }

    /// Returns the MAC of `addr` on `ifindex` when the kernel has a usable
    /// neighbour entry for it.
    pub fn neighbour(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
    ) -> Result<Option<[u8; 6]>, NexthopError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = family(addr);
        msg.header.ifindex = ifindex;
        let replies = self
            .request(
                RouteNetlinkMessage::GetNeighbour(msg),
                NLM_F_REQUEST | NLM_F_DUMP,
            )
            .map_err(|e| with_op(e, "get neighbour", addr))?;
        let want = neighbour_address(addr);
        for reply in replies {
            let RouteNetlinkMessage::NewNeighbour(n) = reply else {
                continue;
            };
            if n.header.ifindex != ifindex || !usable(n.header.state) {
                continue;
            }
            let mut dst = None;
            let mut lladdr = None;
            for attr in &n.attributes {
                match attr {
                    NeighbourAttribute::Destination(d) => dst = Some(d),
                    NeighbourAttribute::LinkLayerAddress(l) => lladdr = Some(l),
                    _ => {}
                }
            }
            if dst == Some(&want) {
                if let Some(mac) = lladdr.and_then(|l| <[u8; 6]>::try_from(l.as_slice()).ok()) {
                    return Ok(Some(mac));
                }
            }
        }
        Ok(None)
    }

    /// Asks the kernel to resolve `addr` on `ifindex` (sends ARP / NS).
    pub fn solicit(&mut self, ifindex: u32, addr: IpAddr) -> Result<(), NexthopError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = family(addr);
        msg.header.ifindex = ifindex;
        msg.header.state = NeighbourState::None;
        msg.header.flags = NeighbourFlags::Use;
        msg.attributes
            .push(NeighbourAttribute::Destination(neighbour_address(addr)));
        self.request(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
        .map_err(|e| with_op(e, "resolve neighbour", addr))
    }

    /// Sends one request and collects the replies up to its end (`Done` for
    /// dumps, the single answer or the ACK otherwise).
    fn request(
        &mut self,
        payload: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NexthopError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(payload));
        msg.finalize();
        let mut out = vec![0; msg.buffer_len()];
        msg.serialize(&mut out);
        self.sock.send(&out, 0).map_err(NexthopError::Socket)?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let n = self
                .sock
                .recv(&mut &mut self.buf[..], 0)
                .map_err(NexthopError::Socket)?;
            let mut off = 0;
            while off < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| NexthopError::Decode(e.to_string()))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(NexthopError::Decode("zero-length message".into()));
                }
                off += len;
                if reply.header.sequence_number != self.seq {
                    continue; // a late answer to an earlier request
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(NexthopError::Kernel {
                                op: "request",
                                addr: IpAddr::from([0, 0, 0, 0]),
                                source: io::Error::from_raw_os_error(-code.get()),
                            }),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Wakes the caller when the kernel's routes or neighbours change, so that
/// next hops are refreshed on change instead of on a timer alone.
pub struct ChangeWatcher {
    sock: Socket,
    buf: Vec<u8>,
}

impl std::fmt::Debug for ChangeWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeWatcher").finish_non_exhaustive()
    }
}

const RTNLGRP_NEIGH: u32 = 3;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV6_ROUTE: u32 = 11;

impl ChangeWatcher {
    /// Subscribes to neighbour and IPv4/IPv6 route notifications in the
    /// calling thread's network namespace.
    pub fn new() -> Result<Self, NexthopError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NexthopError::Socket)?;
        sock.bind_auto().map_err(NexthopError::Socket)?;
        for group in [RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE] {
            sock.add_membership(group).map_err(NexthopError::Socket)?;
        }
        sock.set_non_blocking(true).map_err(NexthopError::Socket)?;
        Ok(ChangeWatcher {
            sock,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Waits up to `timeout` for a change; returns whether one arrived. All
    /// pending notifications are consumed (one wake-up per burst).
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, NexthopError> {
        let mut pfd = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is a valid pollfd for the duration of the call and
        // the count passed is 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(NexthopError::Socket(err))
            };
        }
        let mut changed = false;
        loop {
            match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(_) => changed = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(changed),
                // Overrun: notifications were lost, which is a change too.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => changed = true,
                Err(e) => return Err(NexthopError::Socket(e)),
            }
        }
    }
}

fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn neighbour_address(addr: IpAddr) -> NeighbourAddress {
    match addr {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

/// Neighbour states whose link-layer address may be used to send.
fn usable(state: NeighbourState) -> bool {
    matches!(
        state,
        NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
            | NeighbourState::Noarp
    )
}

fn with_op(e: NexthopError, op: &'static str, addr: IpAddr) -> NexthopError {
    match e {
        NexthopError::Kernel { source, .. } => NexthopError::Kernel { op, addr, source },
        other => other,
    }
}
