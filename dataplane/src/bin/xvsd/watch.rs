//! The port watchdog: one thread that looks at every port every
//! [`PERIOD`] and repairs what can be repaired without a restart.
//!
//! Per port it checks, with calls that need no capability and cost a few
//! microseconds:
//! * that the interface still exists (`if_indextoname` on its ifindex).
//!   A deleted interface is logged once and shown as `gone` by
//!   `xvsctl show`; the kernel has already unbound its AF_XDP sockets and
//!   detached the program, the other ports keep forwarding. Its sockets
//!   are closed on every worker ([`closing_sockets`]), which takes back the
//!   frames left on their rings. When an interface of that name exists
//!   again (re-created, as Open vSwitch takes it back), the port is opened
//!   again through live reconfiguration's port-add path
//!   ([`Live::reopen`](crate::live::Live::reopen): XDP, sockets on every
//!   worker, XSKMAP, classifier entry); a failure is logged and tried again
//!   every [`REOPEN_RETRY`];
//! * its MTU (`SIOCGIFMTU`): a change is handed to the workers
//!   ([`Live::port_mtu_changed`](crate::live::Live::port_mtu_changed)), so
//!   local egress over it and, for the uplink, encapsulated frames over it
//!   are counted drops (`drop_mtu`) rather than frames the kernel drops
//!   silently;
//! * its administrative and carrier state (`SIOCGIFFLAGS`): `up` or `down`,
//!   transitions logged. Nothing needs re-doing after down/up: the
//!   bpf_link and the AF_XDP sockets survive it;
//! * that its bpf_link is still attached and runs our program
//!   ([`Attachment::status`]). Someone with `CAP_SYS_ADMIN` can detach it
//!   (`bpftool link detach id N`); netlink cannot (`ip link set dev X xdp
//!   off` is refused while a link holds the hook). A detached link is
//!   logged and replaced by a new attachment in the same mode (this needs
//!   no capability: xvsd holds the program's fd; `privs`), retried every
//!   period while it fails (for instance while another program holds the
//!   hook).
//!
//! Ports enter and leave the [`Watchlist`] with their attachment: start-up
//! adds every configured port; live `port add`/`port del` add and remove
//! theirs (removing drops the attachment, which detaches).

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{bounded, Sender};
use xvs_control::proto::Counter;
use xvs_dataplane::daemon::netdev;
use xvs_dataplane::xsk::PortId;
use xvs_ebpf::{Attachment, Classifier, XdpMode};

use crate::live::SharedModel;
use crate::worker::IoCommand;

/// How often every port is checked.
pub const PERIOD: Duration = Duration::from_millis(250);
/// How often taking back a re-created interface is tried while it fails.
pub const REOPEN_RETRY: Duration = Duration::from_secs(2);

/// A port's state as the watchdog last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not checked yet.
    Unknown = 0,
    /// Administratively up with carrier.
    Up = 1,
    /// Administratively down or without carrier.
    Down = 2,
    /// The interface was deleted.
    Gone = 3,
}

impl LinkState {
    /// The word `xvsctl show` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Unknown => "unknown",
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Gone => "gone",
        }
    }

    fn from_u8(v: u8) -> LinkState {
        match v {
            1 => LinkState::Up,
            2 => LinkState::Down,
            3 => LinkState::Gone,
            _ => LinkState::Unknown,
        }
    }
}

/// A port's health, shared between the watchdog (writer) and the control
/// socket (reader).
#[derive(Debug, Default)]
pub struct PortHealth {
    state: AtomicU8,
    xdp_link: AtomicU32,
    xdp_reattached: AtomicU64,
}

impl PortHealth {
    /// The state last seen.
    pub fn state(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// The id of the bpf_link holding the classifier on it now
    /// (`bpftool link show id N`); 0 while there is none.
    pub fn xdp_link(&self) -> u32 {
        self.xdp_link.load(Ordering::Relaxed)
    }

    /// How often it was attached again.
    pub fn xdp_reattached(&self) -> u64 {
        self.xdp_reattached.load(Ordering::Relaxed)
    }

    fn set(&self, s: LinkState) -> LinkState {
        LinkState::from_u8(self.state.swap(s as u8, Ordering::Relaxed))
    }
}

/// One watched port.
#[derive(Debug)]
pub struct Watched {
    /// Interface name (as configured).
    pub name: String,
    /// Its ifindex when it was set up.
    pub ifindex: u32,
    /// The classifier's attachment; `None` once the interface is gone or
    /// while a re-attach keeps failing.
    pub attachment: Option<Attachment>,
    /// The XDP mode it runs in (kept for re-attaching).
    pub mode: XdpMode,
    /// What the watchdog found.
    pub health: Arc<PortHealth>,
    /// Re-attach is failing (logged once per episode).
    failing: bool,
    /// Its MTU as last seen (0: not read yet).
    mtu: u32,
    /// Gone: when taking it back may be tried (again).
    reopen_at: Option<Instant>,
}

impl Watched {
    /// A port attached with `attachment`, reporting into `health`.
    pub fn new(name: &str, attachment: Attachment, health: Arc<PortHealth>) -> Watched {
        let link = attachment.link_id().unwrap_or(0);
        health.xdp_link.store(link, Ordering::Relaxed);
        Watched {
            name: name.to_owned(),
            ifindex: attachment.ifindex(),
            mode: attachment.mode(),
            attachment: Some(attachment),
            health,
            failing: false,
            mtu: 0,
            reopen_at: None,
        }
    }
}

/// What to do about a port whose interface was deleted, given its name.
/// Runs on the watchdog thread: quick, and never waiting for the control
/// path (which may hold the list).
pub type GoneHook = Box<dyn Fn(&str) + Send + Sync>;

/// A change the watchdog found that the live configuration must follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortEvent {
    /// A gone port's interface exists again (by name).
    Back(String),
    /// A port's MTU changed (name, new MTU).
    Mtu(String, u32),
}

/// What to do about a [`PortEvent`]. Runs on the watchdog thread with no
/// lock of the list held: it may wait for the control path.
pub type ChangeHook = Box<dyn Fn(PortEvent) + Send + Sync>;

/// The ports the watchdog looks after. Cloning shares the list.
#[derive(Clone, Default)]
pub struct Watchlist {
    ports: Arc<Mutex<Vec<Watched>>>,
    gone: Arc<Mutex<Option<GoneHook>>>,
    change: Arc<Mutex<Option<ChangeHook>>>,
}

impl std::fmt::Debug for Watchlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.lock().iter()).finish()
    }
}

impl Watchlist {
    fn lock(&self) -> MutexGuard<'_, Vec<Watched>> {
        self.ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `hook` for every port found deleted from now on.
    pub fn on_gone(&self, hook: GoneHook) {
        *self.gone.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// Runs `hook` for every [`PortEvent`] from now on.
    pub fn on_change(&self, hook: ChangeHook) {
        *self.change.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// Starts watching a port (its state and MTU are read right away).
    pub fn add(&self, mut w: Watched) {
        if let Some(name) = name_of(w.ifindex) {
            if let Ok(mtu) = netdev::mtu(&name) {
                w.mtu = mtu;
            }
            if let Some(state) = flags_state(&name) {
                if state == LinkState::Down {
                    tracing::warn!(port = %w.name, "interface down (no traffic until it is up)");
                }
                w.health.set(state);
            }
        }
        self.lock().push(w);
    }

    /// Stops watching the port named `name` and returns it (dropping it
    /// detaches its program).
    pub fn remove(&self, name: &str) -> Option<Watched> {
        let mut l = self.lock();
        let i = l.iter().position(|w| w.name == name)?;
        Some(l.remove(i))
    }

    /// Stops watching every port; their programs detach.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Per watched port, for `xvsctl stats` and `/metrics` (scope `link`,
    /// instance the port's name): `up` (1 while up, 0 when down or gone; a
    /// gauge) and `xdp_reattached` (how often its program was put back).
    pub fn counters(&self) -> Vec<Counter> {
        let c = |port: &str, name: &str, value: u64| Counter {
            scope: "link".into(),
            instance: port.to_owned(),
            name: name.into(),
            value,
        };
        self.lock()
            .iter()
            .flat_map(|w| {
                let up = u64::from(w.health.state() == LinkState::Up);
                [
                    c(&w.name, "up", up),
                    c(&w.name, "xdp_reattached", w.health.xdp_reattached()),
                ]
            })
            .collect()
    }
}

/// The name of interface `ifindex` now, or `None` if there is none.
fn name_of(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` is IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the kernel wrote a NUL-terminated name into `buf`.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Up (administratively, with carrier) or down, from the interface's
/// flags; `None` if they cannot be read.
fn flags_state(name: &str) -> Option<LinkState> {
    let f = netdev::flags(name).ok()?;
    Some(if f & libc::IFF_UP != 0 && f & libc::IFF_RUNNING != 0 {
        LinkState::Up
    } else {
        LinkState::Down
    })
}

/// What one check found that others must act on.
enum Found {
    /// The interface was deleted just now.
    Gone,
    /// See [`PortEvent`].
    Event(PortEvent),
}

/// Checks one port; repairs its attachment if needed.
fn check(cls: &Classifier, w: &mut Watched) -> Option<Found> {
    if w.health.state() == LinkState::Gone {
        // Re-created under the same name? Taken back (not more often than
        // every REOPEN_RETRY while that fails).
        let now = Instant::now();
        if w.reopen_at.is_some_and(|t| now < t) || xvs_ebpf::ifindex_of(&w.name).is_err() {
            return None;
        }
        w.reopen_at = Some(now + REOPEN_RETRY);
        return Some(Found::Event(PortEvent::Back(w.name.clone())));
    }
    let Some(now_name) = name_of(w.ifindex) else {
        w.health.set(LinkState::Gone);
        w.health.xdp_link.store(0, Ordering::Relaxed);
        w.attachment = None;
        tracing::error!(
            port = %w.name,
            ifindex = w.ifindex,
            "interface deleted while in use: the port is gone (its traffic is lost, the other \
             ports keep forwarding); it is taken back when an interface of that name \
             exists again"
        );
        return Some(Found::Gone);
    };
    // None: deleted between the two calls; the next check says so.
    let state = flags_state(&now_name)?;
    let mtu_changed = match netdev::mtu(&now_name) {
        Ok(mtu) if mtu != w.mtu => {
            w.mtu = mtu;
            Some(Found::Event(PortEvent::Mtu(w.name.clone(), mtu)))
        }
        _ => None,
    };
    let was = w.health.set(state);
    match (was, state) {
        (LinkState::Unknown | LinkState::Up, LinkState::Down) => {
            tracing::warn!(port = %w.name, "interface down (no traffic until it is up again)")
        }
        (LinkState::Down, LinkState::Up) => {
            tracing::info!(port = %w.name, "interface up again, forwarding resumes")
        }
        _ => {}
    }

    let prog = cls.program_id();
    let ok = match &w.attachment {
        Some(a) => match a.status() {
            Ok(s) => s.is_attached(w.ifindex, prog),
            Err(e) => {
                tracing::warn!(port = %w.name, error = %e, "cannot read the XDP link's state");
                true
            }
        },
        None => false,
    };
    if ok {
        return mtu_changed;
    }
    if let Some(old) = w.attachment.take() {
        tracing::warn!(
            port = %w.name,
            link = old.link_id(),
            "XDP program detached from under xvsd (bpftool link detach?): re-attaching"
        );
        w.health.xdp_link.store(0, Ordering::Relaxed);
        drop(old);
    }
    match cls.attach_ifindex(w.ifindex, w.mode) {
        Ok(a) => {
            w.health
                .xdp_link
                .store(a.link_id().unwrap_or(0), Ordering::Relaxed);
            w.health.xdp_reattached.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(port = %w.name, link = a.link_id(), mode = %a.mode(), "XDP re-attached");
            w.mode = a.mode();
            w.attachment = Some(a);
            w.failing = false;
        }
        Err(e) => {
            if !w.failing {
                tracing::error!(port = %w.name, error = %e, "cannot re-attach XDP; retrying");
                w.failing = true;
            }
        }
    }
    mtu_changed
}

/// Starts the watchdog over `list`; it stops when `stop` is set.
pub fn spawn(
    cls: Arc<Classifier>,
    list: Watchlist,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("xvs-watch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut gone = Vec::new();
                let mut events = Vec::new();
                for w in list.lock().iter_mut() {
                    match check(&cls, w) {
                        Some(Found::Gone) => gone.push(w.name.clone()),
                        Some(Found::Event(e)) => events.push(e),
                        None => {}
                    }
                }
                if !events.is_empty() {
                    let hook = list.change.lock().unwrap_or_else(|p| p.into_inner());
                    for e in events {
                        if let Some(h) = hook.as_ref() {
                            h(e);
                        }
                    }
                }
                if !gone.is_empty() {
                    let hook = list.gone.lock().unwrap_or_else(|p| p.into_inner());
                    for name in &gone {
                        if let Some(h) = hook.as_ref() {
                            h(name);
                        }
                    }
                }
                std::thread::sleep(PERIOD);
            }
        })
        .context("spawning the port watchdog")
}

/// The hook xvsd installs: a deleted port's sockets are taken out of the
/// XSKMAP and closed on every worker, so the frames on their rings (which
/// an unbound socket never gives back) return to the pool and nothing is
/// queued to them any more. The workers answer on their own; nobody waits.
pub fn closing_sockets(
    model: SharedModel,
    cls: Arc<Classifier>,
    workers: Vec<Sender<IoCommand>>,
) -> GoneHook {
    Box::new(move |name| {
        let id = {
            let m = model.read().unwrap_or_else(|p| p.into_inner());
            m.ports().iter().find(|p| p.name == name).map(|p| p.id.0)
        };
        let Some(id) = id else { return };
        for q in 0..workers.len() {
            let _ = cls.remove_xsk(u32::from(id), q as u32);
        }
        for (q, w) in workers.iter().enumerate() {
            let (reply, _) = bounded(1);
            if w.send(IoCommand::Close {
                port: PortId::new(id),
                reply,
            })
            .is_err()
            {
                tracing::warn!(port = %name, queue = q, "worker gone: socket left open");
            }
        }
        tracing::info!(port = %name, "closing the deleted port's sockets");
    })
}
