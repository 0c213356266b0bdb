//! Raw protocol frames sent by a real process of another uid
//! (`src/bin/raw_client.rs` through setpriv): for what mfactl would never
//! send, and for peers that are not root.

use super::{TEST_RHOST, TestDaemon, run_as, show};
use crate::bins;
use mfad_protocol::{ErrorCode, Response, ResponseEnvelope};

impl TestDaemon {
    /// Sends each JSON body as one frame as `uid`:`gid` and returns the
    /// responses, up to the daemon closing the connection.
    pub fn raw_as(&self, uid: u32, gid: u32, frames: &[String]) -> Vec<Response> {
        let mut args = vec![self.socket().to_string_lossy().into_owned()];
        args.extend(frames.iter().cloned());
        let out = run_as(uid, gid, &bins::artifact("raw_client"), &args);
        assert!(out.status.success(), "raw_client: {}", show(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .take_while(|l| *l != "CLOSED")
            .map(|l| {
                let env: ResponseEnvelope =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad response {l:?}: {e}"));
                assert_eq!(env.version, 1, "{l}");
                env.response
            })
            .collect()
    }
}

/// An `auth_start` frame for `user` on `service` from [`TEST_RHOST`].
pub fn auth_start_frame(user: &str, service: &str) -> String {
    serde_json::json!({"version": 1, "request": {
        "type": "auth_start", "user": user, "service": service, "rhost": TEST_RHOST}})
    .to_string()
}

/// A `ping` frame.
pub fn ping_frame() -> String {
    r#"{"version":1,"request":{"type":"ping"}}"#.to_owned()
}

/// Whether the daemon refused the request to this peer.
pub fn is_permission_denied(resp: Option<&Response>) -> bool {
    matches!(
        resp,
        Some(Response::Error {
            code: ErrorCode::PermissionDenied,
            ..
        })
    )
}
