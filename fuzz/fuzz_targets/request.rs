//! Request parsing (every request type) on a frame body from any local
//! user: no panic, and a request that parses re-encodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfad_protocol::{RequestEnvelope, parse_request};

fuzz_target!(|body: &[u8]| {
    let Ok(request) = parse_request(body) else {
        return;
    };
    let encoded = serde_json::to_vec(&RequestEnvelope::new(&request))
        .unwrap_or_else(|e| panic!("a parsed request does not encode: {e}"));
    let again = parse_request(&encoded)
        .unwrap_or_else(|e| panic!("a re-encoded request does not parse: {e:?}"));
    assert_eq!(
        serde_json::to_value(&request).ok(),
        serde_json::to_value(&again).ok(),
        "the request changed in a round trip"
    );
});
