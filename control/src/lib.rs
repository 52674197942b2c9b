//! xvs control plane: the configuration schema and the control protocol.
