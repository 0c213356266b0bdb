//! The frame decoder on a byte stream from a peer: a stream of frames, each
//! decoded as the PAM module decodes the daemon's answers. Nothing may
//! panic or allocate past the size cap, and a frame that decodes must
//! encode back to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfad_protocol::{ResponseEnvelope, encode, read_frame};
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let mut stream = Cursor::new(data);
    loop {
        match read_frame::<_, ResponseEnvelope>(&mut stream) {
            Ok(envelope) => {
                let Ok(bytes) = encode(&envelope) else {
                    panic!("a decoded response does not encode: {envelope:?}");
                };
                let again: ResponseEnvelope = read_frame(&mut Cursor::new(&bytes[..]))
                    .unwrap_or_else(|e| panic!("an encoded response does not decode: {e}"));
                let (a, b) = (serde_json::to_value(&envelope), serde_json::to_value(&again));
                assert_eq!(a.ok(), b.ok(), "the response changed in a round trip");
            }
            // Any error ends the conversation, as it does in the module.
            Err(_) => break,
        }
    }
});
