//! The configuration parser on arbitrary text: never panics, and whatever it
//! accepts is valid and survives dump → parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvs_control::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = Config::parse(text) {
        cfg.validate().expect("a parsed config is valid");
        let again = Config::parse(&cfg.to_toml()).expect("a dumped config parses");
        assert_eq!(again, cfg);
    }
});
