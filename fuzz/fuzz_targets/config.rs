//! mfad.toml: any text gives a configuration or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = mfad::config::Config::parse(Path::new("/etc/mfad/mfad.toml"), text) {
        // --check-config prints this for every valid file.
        let _ = config.describe();
    }
});
