//! The `mfad.audit.v1` record: one JSON object per event, the same in the
//! database chain, the JSON-lines file, the syslog message and
//! `mfactl audit --json --follow`. The field list is documented in the README
//! ("Audit stream"); add fields only with a new schema name.

use super::Event;
use mfad_protocol::time::utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const SCHEMA: &str = "mfad.audit.v1";

/// The `prev_hash` of the first row ever written on a host.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every field of a record except its own hash; the hash covers exactly this,
/// serialized as compact JSON in this field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    pub schema: String,
    /// The row id in the host's database; `None` for an event that was not
    /// stored (the database failed).
    pub seq: Option<i64>,
    /// RFC 3339, UTC.
    pub time: String,
    pub host: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `self` (a user acting on their own account), `admin` (root or the
    /// admin group acting on an account), `pam` (the PAM stack), `daemon`.
    pub actor: String,
    pub user: String,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    /// The audit session id of the peer (`/proc/PID/sessionid`).
    pub session_id: Option<u32>,
    pub channel: String,
    pub decision: String,
    pub rule: Option<String>,
    pub policy_version: Option<i64>,
    pub reason: String,
    pub peer_uid: u32,
    /// One id per client connection: the events of one login share it.
    pub request_id: Option<String>,
    /// The PAM_RUSER of the login, and the real uid of the process that
    /// asked (who ran su or sudo). Absent when not known, and in rows
    /// written before they were recorded (so those still hash the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_uid: Option<u32>,
    pub prev_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub body: Body,
    pub hash: Option<String>,
}

impl Body {
    /// The record of `event`, as row `seq` after `prev_hash`.
    pub fn of(event: &Event, seq: Option<i64>, prev_hash: Option<String>) -> Self {
        let actor = actor(event.channel);
        Self {
            schema: SCHEMA.to_owned(),
            seq,
            time: rfc3339(event.time),
            host: super::host().to_owned(),
            kind: kind(event.channel, event.decision).to_owned(),
            actor: actor.to_owned(),
            user: event.user.clone(),
            service: event.service.clone(),
            rhost: event.rhost.clone(),
            tty: event.tty.clone(),
            session_id: event.session_id,
            channel: event.channel.to_owned(),
            decision: event.decision.to_owned(),
            rule: event.rule.clone(),
            policy_version: event.policy_version,
            reason: event.reason.clone(),
            peer_uid: event.peer_uid,
            request_id: event.request.map(super::context::request_id),
            ruser: event.ruser.clone(),
            caller_uid: event.caller_uid,
            prev_hash,
        }
    }

    /// SHA-256 of the compact JSON of this body, in hex.
    pub fn hash(&self) -> String {
        // Serializing a struct of strings and numbers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(&json))
    }

    /// The hashed JSON of this body as row `seq` after `prev_hash`, in
    /// three parts: `head`, then the id, then `mid`, then the previous
    /// hash and `"}`. The database fills in the id and the previous hash
    /// where it appends the row (`store/postgres/audit.rs`).
    pub fn around_place(&self) -> (Vec<u8>, Vec<u8>) {
        let json = serde_json::to_vec(&Self {
            seq: Some(0),
            prev_hash: Some(String::new()),
            ..self.clone()
        })
        .unwrap_or_default();
        // `schema` is first and `prev_hash` last (the field order above).
        let head = format!(r#"{{"schema":{},"seq":"#, serde_json::json!(self.schema));
        let mid = &json[head.len() + 1..json.len() - 2];
        (head.into_bytes(), mid.to_vec())
    }

    /// The record with its hash, for a stored (chained) event.
    pub fn sealed(self) -> Record {
        let hash = self.prev_hash.is_some().then(|| self.hash());
        Record { body: self, hash }
    }
}

impl Record {
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The fields that have a value, named as in the JSON, for outputs
    /// that carry fields of their own (syslog structured data, journald).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let b = &self.body;
        let fields: [(&'static str, Option<String>); 20] = [
            ("schema", Some(b.schema.clone())),
            ("seq", b.seq.map(|v| v.to_string())),
            ("type", Some(b.kind.clone())),
            ("actor", Some(b.actor.clone())),
            ("user", Some(b.user.clone())),
            ("service", Some(b.service.clone())),
            ("rhost", b.rhost.clone()),
            ("tty", b.tty.clone()),
            ("session_id", b.session_id.map(|v| v.to_string())),
            ("channel", Some(b.channel.clone())),
            ("decision", Some(b.decision.clone())),
            ("rule", b.rule.clone()),
            ("policy_version", b.policy_version.map(|v| v.to_string())),
            ("reason", Some(b.reason.clone())),
            ("peer_uid", Some(b.peer_uid.to_string())),
            ("request_id", b.request_id.clone()),
            ("ruser", b.ruser.clone()),
            ("caller_uid", b.caller_uid.map(|v| v.to_string())),
            ("prev_hash", b.prev_hash.clone()),
            ("hash", self.hash.clone()),
        ];
        fields
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect()
    }

    /// The syslog severity: denials and refusals are warnings (4),
    /// everything else info (6).
    pub fn severity(&self) -> u8 {
        match self.body.decision.as_str() {
            "deny" | "locked" | "refused" | "failed" => 4,
            _ => 6,
        }
    }
}

/// `2026-11-23T19:04:05Z`.
pub fn rfc3339(secs: i64) -> String {
    utc(secs).replacen(' ', "T", 1)
}

/// What kind of event this is, from where it came from and what it did.
fn kind(channel: &str, decision: &str) -> &'static str {
    match channel {
        "policy" => "policy_load",
        "audit" => "audit",
        "session" => "session",
        "device" => "trusted_device",
        "self" => "self_service",
        "admin" => "admin",
        _ if matches!(decision, "sent" | "failed") => "code_delivery",
        _ => "authentication",
    }
}

/// Who acted. Only requests from `mfactl` can be a user's own (channel
/// `self`, see `Event::admin`): a PAM flow is run by the PAM stack whoever
/// the user is.
fn actor(channel: &str) -> &'static str {
    match channel {
        "policy" | "audit" => "daemon",
        "self" => "self",
        "admin" => "admin",
        _ => "pam",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Decision;

    fn event(channel: &'static str, peer_uid: u32, user: &str) -> Event {
        let mut e = Event::admin(
            user,
            "totp enrolled",
            Decision::Done,
            peer_uid,
            1_795_460_645,
        );
        if channel != "admin" {
            e.channel = channel;
        }
        e
    }

    #[test]
    fn self_service_is_marked_as_the_users_own() {
        let own = Body::of(&event("admin", 0, "root"), None, None);
        assert_eq!(
            (own.kind.as_str(), own.actor.as_str()),
            ("self_service", "self")
        );
        let other = Body::of(&event("admin", 0, "alice"), None, None);
        assert_eq!(
            (other.kind.as_str(), other.actor.as_str()),
            ("admin", "admin")
        );
        let login = Body::of(&event("totp", 0, "root"), None, None);
        assert_eq!(
            (login.kind.as_str(), login.actor.as_str()),
            ("authentication", "pam")
        );
    }

    /// What the database computes from `around_place` is the hash that
    /// `verify` recomputes from the row.
    #[test]
    fn the_hash_around_the_place_is_the_rows_hash() {
        let mut e = event("totp", 1000, "zoë \"quoted\"");
        e.ruser = Some("bob".to_owned());
        e.caller_uid = Some(1001);
        for (id, prev) in [
            (1, GENESIS.to_owned()),
            (9_007_199_254_740_993, "ab".repeat(32)),
        ] {
            let body = Body::of(&e, None, None);
            let (head, mid) = body.around_place();
            let json = [
                head,
                id.to_string().into_bytes(),
                mid,
                prev.clone().into_bytes(),
                b"\"}".to_vec(),
            ]
            .concat();
            let placed = Body {
                seq: Some(id),
                prev_hash: Some(prev),
                ..body
            };
            assert_eq!(hex(&Sha256::digest(&json)), placed.hash());
        }
    }

    #[test]
    fn the_hash_covers_every_field_and_the_link() {
        let body = Body::of(
            &event("totp", 0, "alice"),
            Some(7),
            Some(GENESIS.to_owned()),
        );
        let record = body.clone().sealed();
        assert_eq!(record.hash.as_deref(), Some(body.hash().as_str()));
        assert_eq!(body.hash().len(), 64);
        let mut edited = body.clone();
        edited.reason.push('!');
        assert_ne!(edited.hash(), body.hash());
        let mut moved = body.clone();
        moved.seq = Some(8);
        assert_ne!(moved.hash(), body.hash());
        let mut relinked = body.clone();
        relinked.prev_hash = Some("1".repeat(64));
        assert_ne!(relinked.hash(), body.hash());
    }

    #[test]
    fn json_names_the_schema_and_rfc3339_time() {
        let json = Body::of(&event("totp", 0, "alice"), Some(1), None)
            .sealed()
            .json();
        assert!(
            json.starts_with(r#"{"schema":"mfad.audit.v1","seq":1,"time":"2026-11-23T19:04:05Z""#),
            "{json}"
        );
        assert!(json.contains(r#""type":"authentication""#), "{json}");
        assert!(json.ends_with(r#""hash":null}"#), "{json}");
    }
}
