//! xvs control plane: the configuration schema and the control protocol.

pub mod config;

pub use config::{Config, ConfigError};
