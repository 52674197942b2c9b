//! `xvsctl`'s side of the control socket.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::proto::{self, Reply, Request, ResponseEnvelope, VERSION};

/// Why a call did not produce a reply.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot connect to {path}: {source} (is xvsd running?)")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The connection failed mid-call.
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    /// The daemon's answer did not decode.
    #[error("bad response from xvsd: {0}")]
    BadResponse(String),
    /// The daemon refused the request; nothing was changed.
    #[error("{0}")]
    Refused(String),
}

/// A connection to xvsd.
#[derive(Debug)]
pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client {
            writer: stream,
            reader,
        })
    }

    /// Sends one request and waits for its reply.
    pub fn call(&mut self, req: &Request) -> Result<Reply, ClientError> {
        self.writer.write_all(&proto::encode_request(req))?;
        self.read_reply()
    }

    /// Sends raw bytes (tests of the daemon's input handling use this) and
    /// reads one reply.
    pub fn call_raw(&mut self, bytes: &[u8]) -> Result<Reply, ClientError> {
        self.writer.write_all(bytes)?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::BadResponse("connection closed".into()));
        }
        let resp: ResponseEnvelope = serde_json::from_str(&line)
            .map_err(|e| ClientError::BadResponse(format!("{e}: {}", line.trim())))?;
        if resp.version != VERSION {
            return Err(ClientError::BadResponse(format!(
                "daemon speaks protocol {}, this xvsctl {VERSION}",
                resp.version
            )));
        }
        resp.into_result().map_err(ClientError::Refused)
    }
}
