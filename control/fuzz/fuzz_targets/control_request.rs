//! The control protocol's request parser on arbitrary bytes: never panics,
//! and whatever it accepts survives encode → parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvs_control::proto::{encode_request, parse_request};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_request(data) {
        let line = encode_request(&req);
        let again = parse_request(&line[..line.len() - 1]).expect("re-encoded request parses");
        assert_eq!(again, req);
    }
});
