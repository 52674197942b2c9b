//! xvsd's side of the control socket: a Unix stream server that reads
//! request lines, checks who is asking, and hands each request to a
//! [`Handler`].
//!
//! Guarantees the daemon relies on:
//! * the socket file is created with the configured mode (0600 by default,
//!   0660 with a group) and every peer's credentials (`SO_PEERCRED`) are
//!   checked as well: root, the daemon's own user, or the configured group;
//! * a client can neither stall the daemon nor exhaust it: each connection
//!   has its own thread with read and write timeouts, requests are bounded
//!   to [`MAX_REQUEST`] bytes, and at most
//!   `max_clients` connections are served at once;
//! * a request that does not parse never reaches the handler, and gets a
//!   one-line error.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;

use crate::proto::{self, Reply, Request, ResponseEnvelope, MAX_REQUEST};

/// What the daemon does with a well-formed request from an allowed peer.
pub trait Handler: Send + Sync + 'static {
    /// Carries the request out, or explains in one line why not (in which
    /// case nothing was changed).
    fn handle(&self, req: Request) -> Result<Reply, String>;
}

/// How the control socket is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Socket path (default `/run/xvs/xvsd.sock`).
    pub path: PathBuf,
    /// Permission bits of the socket file.
    pub mode: u32,
    /// A group whose members may use the socket besides root and the
    /// daemon's user.
    pub group: Option<u32>,
    /// How long a client may take to send a request line.
    pub read_timeout: Duration,
    /// Most connections served at once.
    pub max_clients: usize,
}

/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/xvs/xvsd.sock";

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            path: PathBuf::from(DEFAULT_SOCKET),
            mode: 0o600,
            group: None,
            read_timeout: Duration::from_secs(5),
            max_clients: 16,
        }
    }
}

/// Why the control socket could not be set up.
#[derive(Debug, Error)]
pub enum ServerError {
    /// Another daemon answers on that path.
    #[error("control socket {0} is in use by a running daemon")]
    InUse(PathBuf),
    /// Creating, binding or setting permissions failed.
    #[error("control socket {path}: {op}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A running control server; stops and removes its socket file on drop.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds the socket and starts serving on a background thread.
    pub fn start(cfg: ServerConfig, handler: Arc<dyn Handler>) -> Result<Server, ServerError> {
        let path = cfg.path.clone();
        let io_err = |op, source| ServerError::Io {
            path: path.clone(),
            op,
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err("create directory", e))?;
        }
        remove_stale(&path)?;
        let listener = UnixListener::bind(&path).map_err(|e| io_err("bind", e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(cfg.mode))
            .map_err(|e| io_err("chmod", e))?;
        if let Some(gid) = cfg.group {
            std::os::unix::fs::chown(&path, None, Some(gid)).map_err(|e| io_err("chown", e))?;
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| io_err("set non-blocking", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("xvs-control".into())
                .spawn(move || accept_loop(listener, cfg, handler, stop))
                .map_err(|e| io_err("spawn", e))?
        };
        Ok(Server {
            path,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes a socket file left by a daemon that died, refusing when a live
/// daemon still answers on it.
fn remove_stale(path: &Path) -> Result<(), ServerError> {
    if !path.exists() {
        return Ok(());
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ServerError::InUse(path.to_path_buf()));
    }
    std::fs::remove_file(path).map_err(|source| ServerError::Io {
        path: path.to_path_buf(),
        op: "remove stale socket",
        source,
    })
}

fn accept_loop(
    listener: UnixListener,
    cfg: ServerConfig,
    handler: Arc<dyn Handler>,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if active.load(Ordering::Relaxed) >= cfg.max_clients {
                    refuse(stream, "too many control clients, try again");
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (cfg, handler, active) = (cfg.clone(), handler.clone(), active.clone());
                let spawned = std::thread::Builder::new()
                    .name("xvs-control-conn".into())
                    .spawn(move || {
                        serve(stream, &cfg, handler.as_ref());
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "control: cannot spawn a connection thread");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!(error = %e, "control: accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn refuse(mut stream: UnixStream, why: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let resp = ResponseEnvelope::from_result(Err(why.to_string()));
    let _ = stream.write_all(&proto::encode_response(&resp));
}

/// The credentials of the process at the other end of `stream`.
fn peer_cred(stream: &UnixStream) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes and `len` holds the size
    // of `cred`, as SO_PEERCRED requires; the fd is open for the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cred)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn allowed(cred: &libc::ucred, group: Option<u32>) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    cred.uid == 0 || cred.uid == me || group == Some(cred.gid)
}

/// Serves one connection: any number of request lines, each answered.
fn serve(stream: UnixStream, cfg: &ServerConfig, handler: &dyn Handler) {
    match peer_cred(&stream) {
        Ok(cred) if allowed(&cred, cfg.group) => {}
        Ok(cred) => {
            tracing::warn!(uid = cred.uid, pid = cred.pid, "control: peer refused");
            return refuse(stream, &format!("permission denied for uid {}", cred.uid));
        }
        Err(e) => return refuse(stream, &format!("cannot check peer credentials: {e}")),
    }
    let _ = stream.set_read_timeout(Some(cfg.read_timeout));
    let _ = stream.set_write_timeout(Some(cfg.read_timeout));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_REQUEST as u64)
            .read_until(b'\n', &mut line);
        let result = match read {
            Ok(0) => return, // the client closed
            Ok(_) if line.last() != Some(&b'\n') && line.len() >= MAX_REQUEST => {
                // Cannot find the next request boundary: answer and close.
                let resp =
                    ResponseEnvelope::from_result(Err(proto::ProtoError::TooLong.to_string()));
                let _ = writer.write_all(&proto::encode_response(&resp));
                return;
            }
            Ok(_) => {
                let body = line.strip_suffix(b"\n").unwrap_or(&line);
                match proto::parse_request(body) {
                    Ok(req) => handler.handle(req),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let resp =
                    ResponseEnvelope::from_result(Err("timed out waiting for a request".into()));
                let _ = writer.write_all(&proto::encode_response(&resp));
                return;
            }
            Err(_) => return,
        };
        let resp = ResponseEnvelope::from_result(result);
        if writer.write_all(&proto::encode_response(&resp)).is_err() {
            return;
        }
    }
}
