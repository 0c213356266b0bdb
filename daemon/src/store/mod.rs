//! The store boundary: what the daemon keeps, as traits by area, with
//! domain types only (no wire types, no configuration types), so a backend
//! is one implementation of these traits. `sqlite/` is the embedded one.
//!
//! Every method is one atomic step: the "accepted at most once" rules
//! (a TOTP step, a backup code, a sent code, a ticket) are each decided
//! inside one call, never across two.

pub mod crypto;
pub mod postgres;
pub mod sqlite;

use crate::audit::Event;
use crate::audit::chain::StoredRow;
use crate::factor::hashed;
use crate::factor::otp::Purpose;
use crate::factor::totp::TotpAlgorithm;
use crate::files::FileError;
use crypto::Sealed;
use std::collections::BTreeMap;
use thiserror::Error;

pub use postgres::PgStore;
pub use sqlite::{SqliteStore, peek_key_state, prepare};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(
        "the database schema is version {found}, newer than this mfad understands ({latest}); upgrade mfad"
    )]
    TooNew { found: usize, latest: usize },
    #[error("the stored row for {0} is corrupt")]
    Corrupt(String),
    #[error("{0} is in use by another mfad; stop it first")]
    InUse(std::path::PathBuf),
    #[error("cannot start the store's thread: {0}")]
    Thread(String),
    #[error("PostgreSQL: {}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no PostgreSQL connection: {0}")]
    Pool(String),
    #[error("PostgreSQL did not answer within {0:?} (store.statement_timeout_ms)")]
    Timeout(std::time::Duration),
    #[error(
        "the PostgreSQL schema is at version {found}, this mfad needs {needed}: run `mfad --migrate` (once, for the whole fleet)"
    )]
    Behind { found: i64, needed: i64 },
    #[error(
        "the PostgreSQL schema is at version {found}, newer than this mfad understands ({needed}); upgrade mfad"
    )]
    Ahead { found: i64, needed: i64 },
    #[error(transparent)]
    Connect(#[from] postgres::ConnectError),
}

impl StoreError {
    /// Whether the shared database could not serve the call (refused, no
    /// connection in the pool, no answer in time, or the server ended it:
    /// see `postgres::unavailable`), as opposed to a store that answered
    /// with an error.
    pub fn unreachable(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Timeout(_) | StoreError::Connect(_) => true,
            StoreError::Postgres(e) => postgres::unavailable(e),
            _ => false,
        }
    }
}

/// Everything the daemon keeps; one value of it per daemon.
pub trait Store:
    Totps
    + BackupCodes
    + Failures
    + Contacts
    + SentCodes
    + Deliveries
    + Devices
    + Sessions
    + History
    + AuditLog
    + Policies
    + Accounts
    + Keys
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: Totps
        + BackupCodes
        + Failures
        + Contacts
        + SentCodes
        + Deliveries
        + Devices
        + Sessions
        + History
        + AuditLog
        + Policies
        + Accounts
        + Keys
        + Send
        + Sync
{
}

/// The failure-counter source that stands for the whole account.
pub const ACCOUNT: &str = "*";

/// How a TOTP factor computes its codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: TotpAlgorithm,
    pub digits: u32,
    pub period: u64,
}

pub struct TotpRecord {
    pub sealed_secret: Sealed,
    pub params: TotpParams,
    pub last_step: i64,
}

/// An active TOTP factor to store.
pub struct NewTotp<'a> {
    pub sealed: &'a Sealed,
    pub params: TotpParams,
    /// The step of the code that confirmed it (accepted once already).
    pub step: i64,
    pub now: i64,
}

/// What an admin may see of a TOTP factor: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSummary {
    pub params: TotpParams,
    pub enrolled_at: i64,
    pub last_used: Option<i64>,
}

pub trait Totps {
    fn totp(&self, user: &str) -> Result<Option<TotpRecord>, StoreError>;
    /// `totp` and `Failures::locked_until` of `counter`, read together at
    /// the start of a login (one round trip on PostgreSQL).
    fn totp_and_lock(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
    ) -> Result<(Option<TotpRecord>, Option<i64>), StoreError>;
    /// A pending enrollment that has not expired (its `last_step` is -1).
    fn pending_totp(&self, user: &str, now: i64) -> Result<Option<TotpRecord>, StoreError>;
    fn has_pending_totp(&self, user: &str, now: i64) -> Result<bool, StoreError>;
    fn put_pending_totp(
        &self,
        user: &str,
        sealed: &Sealed,
        p: TotpParams,
        expires: i64,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Makes a confirmed enrollment the user's active TOTP factor, with its
    /// backup codes when given (an empty list keeps the old ones on
    /// import), in one durable step: an interrupted enrollment leaves
    /// nothing behind. `step` is the step of the confirming code, so that
    /// code cannot also log in.
    fn enroll_totp(
        &self,
        user: &str,
        totp: &NewTotp<'_>,
        backup: Option<&[hashed::Stored]>,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Whether a login's success is written with the code that ends it
    /// (`accept_totp_step`'s `then`). On PostgreSQL that saves the database
    /// a transaction per login; SQLite writes it after the verdict, where
    /// it costs the person waiting nothing.
    fn success_with_step(&self) -> bool {
        false
    }
    /// Accepts `take.step` for `take.user` only if it is strictly later
    /// than the last accepted one (and past a start-up fence), atomically:
    /// of concurrent attempts with the same code, exactly one succeeds. On
    /// success the counters of `take.counter` are cleared and `event` is
    /// written with it, and `then` when the code ends the login.
    fn accept_totp_step(
        &self,
        take: &TakeStep<'_>,
        event: &Event,
        then: Option<&Succeeded<'_>>,
    ) -> Result<bool, StoreError>;
    fn totp_summary(&self, user: &str) -> Result<Option<TotpSummary>, StoreError>;
}

/// A TOTP step a code matched (`Totps::accept_totp_step`).
#[derive(Clone, Copy)]
pub struct TakeStep<'a> {
    pub user: &'a str,
    /// The secret the code was checked against: a secret replaced or
    /// re-sealed during the login takes no step of the old one (`None`: any
    /// secret, for a step taken already on this host's cache).
    pub checked: Option<&'a Sealed>,
    pub counter: Counter<'a>,
    pub step: i64,
    pub now: i64,
}

pub trait BackupCodes {
    fn replace_backup_codes(
        &self,
        user: &str,
        codes: &[hashed::Stored],
        event: &Event,
    ) -> Result<(), StoreError>;
    /// The unused codes, by id.
    fn unused_backup_codes(&self, user: &str) -> Result<Vec<(i64, hashed::Stored)>, StoreError>;
    fn backup_codes_left(&self, user: &str) -> Result<u32, StoreError>;
    /// Uses code `id` once; false if it was used already.
    fn consume_backup_code(
        &self,
        user: &str,
        id: i64,
        now: i64,
        counter: Counter<'_>,
        event: &Event,
    ) -> Result<bool, StoreError>;
}

/// Where failures are counted: per factor (not the audit channel, though
/// both name the factor today) and per source (a remote host, or a local
/// caller), beside the account-wide counter of the same factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter<'a> {
    pub factor: &'static str,
    pub source: &'a str,
}

/// When failures lock, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRule {
    /// Failures from one source before that source is locked out.
    pub threshold: u32,
    /// Failures from all sources before the factor is locked for everyone.
    pub account_threshold: u32,
    /// How long a lock lasts, and after how long counters start again.
    pub duration_secs: i64,
}

/// What a failure did to the counters.
#[derive(Debug, Clone, Copy)]
pub struct FailureState {
    /// Consecutive failures for the account and factor, all sources.
    pub consecutive: u32,
    pub locked_until: Option<i64>,
}

/// One failure counter that still matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    pub factor: String,
    /// The source counted ([`ACCOUNT`] for the whole account).
    pub source: String,
    pub failures: u32,
    pub locked_until: Option<i64>,
}

pub trait Failures {
    /// Counts a failure for the source and for the whole account, locking
    /// either when it reaches its threshold. Counters older than the lock
    /// duration start again from zero, so locks release themselves.
    fn record_failure(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
        rule: LockRule,
        event: &Event,
    ) -> Result<FailureState, StoreError>;
    /// The time until which the source (or the whole account) is locked out
    /// of the factor, if it is.
    fn locked_until(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Recent counters and active locks.
    fn failure_counts(
        &self,
        user: &str,
        now: i64,
        rule: LockRule,
    ) -> Result<Vec<FailureCount>, StoreError>;
    /// Lifts every lock of `user`; returns how many counters were cleared.
    fn unlock_user(&self, user: &str, event: &Event) -> Result<usize, StoreError>;
}

/// A stored contact: the verified address and a pending one, both sealed.
#[derive(Debug, Clone, Default)]
pub struct ContactRow {
    pub address: Option<Sealed>,
    pub verified_at: Option<i64>,
    pub pending: Option<Sealed>,
}

pub trait Contacts {
    fn contact(&self, user: &str, channel: &str) -> Result<Option<ContactRow>, StoreError>;
    /// Stores an address, verified (set by an admin) or pending.
    fn put_contact(
        &self,
        user: &str,
        channel: &str,
        sealed: &Sealed,
        verified: bool,
        now: i64,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Uses the verification code with `salt` once and makes `sealed` the
    /// verified address; false if the code was used or expired.
    fn verify_contact(
        &self,
        user: &str,
        channel: &str,
        salt: &[u8],
        sealed: &Sealed,
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError>;
    fn clear_contact(&self, user: &str, channel: &str, event: &Event) -> Result<bool, StoreError>;
}

/// A code sent by SMS or email, as stored.
pub struct SentCode {
    pub stored: hashed::Stored,
    pub sent_at: i64,
    pub expires: i64,
    pub failures: u32,
}

/// Whether a new code may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    Issued,
    /// Too soon after the last one: wait this many seconds.
    Cooldown {
        wait: i64,
    },
    /// The hourly cap is reached until then.
    Capped {
        until: i64,
    },
}

pub struct SendLimits {
    pub cooldown_secs: i64,
    pub hourly_cap: u32,
}

pub trait SentCodes {
    /// Stores a new code (replacing an older one) if the limits allow.
    #[allow(clippy::too_many_arguments)]
    fn issue_code(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
        code: &hashed::Stored,
        now: i64,
        expires: i64,
        limits: &SendLimits,
    ) -> Result<Issue, StoreError>;
    fn sent_code(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
    ) -> Result<Option<SentCode>, StoreError>;
    /// Counts a wrong try at the code with `salt`; returns the count
    /// (`u32::MAX` if the code is gone).
    fn code_failed(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
        salt: &[u8],
    ) -> Result<u32, StoreError>;
    fn void_code(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
        salt: &[u8],
    ) -> Result<(), StoreError>;
    /// Uses the login code with `salt` once; false if used or expired.
    fn consume_login_code(
        &self,
        user: &str,
        channel: &str,
        counter: Counter<'_>,
        salt: &[u8],
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError>;
}

/// The caps on messages sent, across all users.
pub struct DeliveryCaps {
    /// Messages per hour on the channel.
    pub hourly: u32,
    /// Messages per hour to one destination prefix (country code).
    pub prefix: u32,
    /// (uid, cap): verification messages per day for one uid.
    pub verify: Option<(u32, u32)>,
}

/// Which cap a delivery would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Hourly,
    Prefix,
    Verify,
}

pub trait Deliveries {
    /// Reserves a delivery under the caps: its id, or the cap it would pass
    /// and when that cap frees up.
    fn reserve_delivery(
        &self,
        channel: &str,
        prefix: &str,
        caps: &DeliveryCaps,
        now: i64,
    ) -> Result<Result<i64, (Over, i64)>, StoreError>;
    /// Gives back a reservation whose message was never sent.
    fn release_delivery(&self, id: i64) -> Result<(), StoreError>;
}

/// A device to trust.
pub struct NewDevice<'a> {
    pub user: &'a str,
    pub key_hash: &'a [u8],
    pub key_type: &'a str,
    pub fingerprint: &'a str,
    pub first_ip: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A trusted device as stored (its key only as a keyed hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: i64,
    pub key_type: String,
    pub fingerprint: String,
    pub first_ip: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used: Option<i64>,
}

pub trait Devices {
    /// When the newest active trust of `key_hash` for `user` was given.
    fn device_trusted_at(
        &self,
        user: &str,
        key_hash: &[u8],
        now: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// The id of the active trust of `key_hash` for `user` given after
    /// `trusted_since`, marking it used and writing `event` (with the id).
    fn use_trusted_device(
        &self,
        user: &str,
        key_hash: &[u8],
        now: i64,
        trusted_since: i64,
        event: &Event,
    ) -> Result<Option<i64>, StoreError>;
    fn trust_device(&self, d: &NewDevice<'_>, event: &Event) -> Result<i64, StoreError>;
    /// The devices of `user` still trusted at `now`.
    fn devices(&self, user: &str, now: i64) -> Result<Vec<DeviceRecord>, StoreError>;
    /// Revokes device `id` of `user`; false if there is no such active one.
    fn revoke_device(
        &self,
        user: &str,
        id: i64,
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError>;
}

/// A factor passed, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub factor: String,
    pub at: i64,
}

/// Factors as stored, the same in every backend: `[["totp", 1700000000]]`.
fn encode_factors(factors: &[Passed]) -> String {
    let pairs: Vec<(&str, i64)> = factors.iter().map(|f| (f.factor.as_str(), f.at)).collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_factors(text: &str) -> Result<Vec<Passed>, StoreError> {
    let pairs: Vec<(String, i64)> =
        serde_json::from_str(text).map_err(|_| StoreError::Corrupt("a session".to_owned()))?;
    Ok(pairs
        .into_iter()
        .map(|(factor, at)| Passed { factor, at })
        .collect())
}

/// What a ticket or a session records about the authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proof {
    pub factors: Vec<Passed>,
    /// The trusted device that stood in for the factors, if one did.
    pub device: Option<String>,
}

/// A session as stored.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub id: i64,
    /// The kernel's audit session id.
    pub audit_session: u32,
    pub user: String,
    /// The owner's uid, which the login uid of a step-up caller must match.
    pub uid: u32,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub opened_at: i64,
    pub proof: Proof,
}

/// Where a new session lives and who owns it.
pub struct NewSession<'a> {
    pub boot_id: &'a str,
    pub audit_session: u32,
    pub user: &'a str,
    pub uid: u32,
    pub service: &'a str,
    pub rhost: Option<&'a str>,
    pub tty: Option<&'a str>,
    pub opened_at: i64,
}

/// A session ticket, stored as its keyed hash with what the login proved.
pub struct NewTicket<'a> {
    pub hash: &'a [u8],
    pub service: &'a str,
    pub proof: &'a Proof,
    pub expires: i64,
}

pub trait Sessions {
    /// Consumes a ticket issued for `user` and `service`: it works once,
    /// and not after it expired.
    fn take_ticket(
        &self,
        hash: &[u8],
        user: &str,
        service: &str,
        now: i64,
    ) -> Result<Option<Proof>, StoreError>;
    fn open_session(
        &self,
        s: &NewSession<'_>,
        proof: &Proof,
        event: &Event,
    ) -> Result<i64, StoreError>;
    /// The sessions of one audit session id in this boot.
    fn sessions_of(&self, boot_id: &str, sid: u32) -> Result<Vec<StoredSession>, StoreError>;
    fn session(&self, boot_id: &str, id: i64) -> Result<Option<StoredSession>, StoreError>;
    /// Every session of this boot.
    fn sessions(&self, boot_id: &str) -> Result<Vec<StoredSession>, StoreError>;
    /// Records factors passed again inside a session (a step-up), with
    /// their new times.
    fn session_passed(&self, id: i64, passed: &[Passed]) -> Result<(), StoreError>;
    /// Forgets what session `id` proved (its factors and device), so that
    /// its next step-up asks every factor; audits it with `event` (its
    /// reason prefixed with the session id) if there was such a session.
    fn clear_session_proof(&self, id: i64, event: &Event) -> Result<(), StoreError>;
    /// Removes sessions and audits each removal with `event` (its reason
    /// prefixed with the session id). Returns the ids removed.
    fn remove_sessions(&self, ids: &[i64], event: &Event) -> Result<Vec<i64>, StoreError>;
    /// Drops sessions of earlier boots and expired tickets.
    fn purge_sessions(&self, boot_id: &str, now: i64) -> Result<usize, StoreError>;
    /// What this store shares with other hosts: `None` for a store of
    /// one host (SQLite), whose sessions and policy are all local.
    fn fleet(&self) -> Option<&dyn Fleet> {
        None
    }
}

/// A session of some host of a fleet.
#[derive(Debug, Clone)]
pub struct HostSession {
    pub host: String,
    pub session: StoredSession,
}

/// A request to end a session, recorded for the host that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub session: i64,
    /// Who asked, on which host.
    pub by_uid: u32,
    pub by_host: String,
    pub requested_at: i64,
}

/// The policy version in force on one host, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    pub host: String,
    pub version: i64,
    pub since: i64,
}

/// One store for many hosts (PostgreSQL): every host's sessions, requests
/// to end them on the host that holds them, and one pushed policy. Each
/// change another host must act on is announced (`NOTIFY`) in the same
/// transaction that records it, so a host told of it finds it recorded.
pub trait Fleet: Send + Sync {
    /// This host's name in the fleet.
    fn host(&self) -> &str;
    /// Every host's sessions (this host's of this boot only).
    fn fleet_sessions(&self, boot_id: &str) -> Result<Vec<HostSession>, StoreError>;
    /// Session `id` on whichever host holds it.
    fn fleet_session(&self, boot_id: &str, id: i64) -> Result<Option<HostSession>, StoreError>;
    /// Records a request for `host` to end one of its sessions and tells it.
    fn request_session_end(&self, host: &str, r: &SessionRequest) -> Result<(), StoreError>;
    /// Takes (removes) the requests to end this host's sessions.
    fn take_session_requests(&self) -> Result<Vec<SessionRequest>, StoreError>;
    /// Stores `text` as the fleet's policy and tells every host; the same
    /// text as the latest pushed version reuses that version. Returns the
    /// version and whether it is new.
    fn push_policy(
        &self,
        sha256: &str,
        text: &str,
        now: i64,
        pushed_by: &str,
    ) -> Result<(i64, bool), StoreError>;
    /// The latest pushed version and its text.
    fn pushed_policy(&self) -> Result<Option<(PolicyRecord, String)>, StoreError>;
    /// Records that this host has `version` in force (since `now`, unless
    /// it had it already).
    fn policy_in_force(&self, version: i64, now: i64) -> Result<(), StoreError>;
    /// Each host and the version it has in force.
    fn policy_hosts(&self) -> Result<Vec<HostPolicy>, StoreError>;
}

/// Where a successful remote login came from.
#[derive(Debug, Clone)]
pub struct Visit {
    pub rhost: String,
    /// Its /24 or /64.
    pub network: String,
    pub country: Option<String>,
}

/// What a successful login leaves behind besides its audit: where it came
/// from, and the ticket its session hook will redeem. Written with the
/// accepted code when that code ends the login (`Totps::accept_totp_step`),
/// otherwise after the verdict (`History::login_succeeded`).
#[derive(Clone, Copy)]
pub struct Succeeded<'a> {
    pub now: i64,
    pub visit: Option<&'a Visit>,
    pub ticket: Option<&'a NewTicket<'a>>,
}

impl Succeeded<'_> {
    pub fn is_empty(&self) -> bool {
        self.visit.is_none() && self.ticket.is_none()
    }
}

pub trait History {
    /// The authentication rows of `user` (each a factor checked, a device
    /// or session that stood in, or a verdict without a prompt), newest
    /// first; only those that let the login in with `allowed_only`.
    fn logins(
        &self,
        user: &str,
        limit: u32,
        allowed_only: bool,
    ) -> Result<Vec<StoredRow>, StoreError>;
    fn network_known(&self, user: &str, network: &str) -> Result<bool, StoreError>;
    /// The source and country of the user's last successful remote login.
    fn last_login(&self, user: &str) -> Result<Option<(String, Option<String>)>, StoreError>;
    /// What a successful login leaves behind, in one step.
    fn login_succeeded(&self, user: &str, what: &Succeeded<'_>) -> Result<(), StoreError>;
}

pub trait AuditLog {
    /// Appends `event` to the chain.
    fn audit(&self, event: &Event) -> Result<(), StoreError>;
    /// The newest rows, of one user or all.
    fn audit_rows(
        &self,
        user: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredRow>, StoreError>;
    /// Calls `each` with every row in id order, a chunk at a time, so
    /// verification never holds logins up for long.
    fn each_audit_row(&self, each: &mut dyn FnMut(StoredRow)) -> Result<(), StoreError>;
    /// Deletes rows older than `before` (oldest first, in batches).
    fn purge_audit(&self, before: i64) -> Result<usize, StoreError>;
}

/// A stored policy version (without its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub version: i64,
    pub sha256: String,
    pub loaded_at: i64,
    /// "startup", "SIGHUP", or "uid N" for `mfactl policy reload`.
    pub loaded_by: String,
}

pub trait Policies {
    /// Records a loaded policy and returns its version number and whether
    /// it is new: the same text as the latest version reuses that version.
    fn record_policy(
        &self,
        sha256: &str,
        text: &str,
        now: i64,
        loaded_by: &str,
    ) -> Result<(i64, bool), StoreError>;
    fn policy_versions(&self) -> Result<Vec<PolicyRecord>, StoreError>;
    /// One version and its text (`None`: the latest).
    fn policy_text(
        &self,
        version: Option<i64>,
    ) -> Result<Option<(PolicyRecord, String)>, StoreError>;
}

/// One account the store knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user: String,
    pub totp_enrolled: bool,
    pub last_used: Option<i64>,
    pub locked: bool,
}

/// Tables whose rows are sealed or keyed under the key: without the key
/// they are useless, and under another key every check fails. Sent codes
/// and session tickets are keyed too, but expire within minutes: losing
/// them costs a new code or a step-up, so they do not keep a key alive.
const KEYED_TABLES: [&str; 5] = [
    "totp",
    "totp_pending",
    "contacts",
    "backup_codes",
    "trusted_devices",
];

/// What a database holds under its key ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// The recorded check value of each key id; none in a new database, or
    /// in one written before check values were recorded.
    pub checks: BTreeMap<u32, Vec<u8>>,
    /// Rows sealed or keyed under the key ring.
    pub keyed_rows: u64,
}

/// The columns that hold sealed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedPlace {
    Totp,
    PendingTotp,
    /// A contact's verified address, and one waiting for its code.
    Address,
    PendingAddress,
}

impl SealedPlace {
    pub const ALL: [SealedPlace; 4] = [
        SealedPlace::Totp,
        SealedPlace::PendingTotp,
        SealedPlace::Address,
        SealedPlace::PendingAddress,
    ];

    /// The table, the sealed column and its key id column (the same names
    /// in both backends).
    pub(crate) fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            SealedPlace::Totp => ("totp", "secret", "key_id"),
            SealedPlace::PendingTotp => ("totp_pending", "secret", "key_id"),
            SealedPlace::Address => ("contacts", "address", "address_key"),
            SealedPlace::PendingAddress => ("contacts", "pending", "pending_key"),
        }
    }
}

/// One sealed value and where it lives, for re-sealing under another key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub place: SealedPlace,
    pub user: String,
    /// The contact's channel (`sms`, `email`); empty for TOTP.
    pub channel: String,
    pub sealed: Sealed,
}

/// The key ring as the database knows it, and the re-sealing of a rotation.
pub trait Keys {
    fn key_state(&self) -> Result<KeyState, StoreError>;
    /// Records the check value of each key id; `replace` first drops the
    /// ones recorded (a new key ring over a database holding nothing under
    /// the old one).
    fn record_key_checks(
        &self,
        checks: &[(u32, [u8; 32])],
        replace: bool,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The newest key id recorded, which seals, and its check value.
    fn newest_key(&self) -> Result<Option<(u32, Vec<u8>)>, StoreError>;
    /// How many values each key id seals.
    fn sealed_per_key(&self) -> Result<BTreeMap<u32, u64>, StoreError>;
    /// Up to `limit` values sealed under another key than `key`.
    fn sealed_not_under(&self, key: u32, limit: usize) -> Result<Vec<SealedValue>, StoreError>;
    /// Stores each value's new sealing where the value is still what was
    /// read (a value changed meanwhile was sealed anew already), in one
    /// durable transaction; returns how many were replaced.
    fn reseal(&self, batch: &[(SealedValue, Sealed)]) -> Result<u64, StoreError>;
}

/// One finding of [`Accounts::self_check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub check: &'static str,
    pub status: HealthStatus,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Ok,
    Warn,
    Fail,
}

/// Accounts as a whole, and the store's own upkeep.
pub trait Accounts {
    /// Every user with a factor, a pending enrollment or a counter.
    fn users(&self, now: i64) -> Result<Vec<UserRecord>, StoreError>;
    /// Removes every factor and counter of `user`; true if there was any.
    fn reset_user(&self, user: &str, event: &Event) -> Result<bool, StoreError>;
    /// Drops expired pending enrollments and counters that no longer count,
    /// so guessed user names cannot grow the store without bound.
    fn purge(&self, now: i64, rule: LockRule) -> Result<usize, StoreError>;
    /// The store's own view of its health, for `mfactl doctor`.
    fn self_check(&self) -> Vec<Health>;
    /// Marks a clean stop: the next start needs no fence. Call when nothing
    /// else will use the store.
    fn close_clean(&self) -> Result<(), StoreError>;
}
