//! xvs XDP classifier and its loader.
