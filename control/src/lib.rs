//! xvs control plane: the configuration schema, the control protocol that
//! `xvsctl` and `xvsd` speak, and both ends of its Unix socket.

pub mod client;
pub mod config;
pub mod metrics;
pub mod proto;
pub mod server;

pub use config::{Config, ConfigError};
