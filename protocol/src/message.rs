//! Requests, responses and the envelope that carries the version.
//!
//! Every wire type refuses unknown fields, and every frame refuses repeated
//! keys (`strict`): a frame means one thing, and a field one side does not
//! know is an error, never silently dropped. The module, the CLI and the
//! daemon share these types, so they agree; a peer of another build that
//! adds a field gets a clear error and, in the module, fails closed.

use crate::{PROTOCOL_VERSION, SUPPORTED_VERSIONS, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub struct RequestEnvelope<'a> {
    pub version: u32,
    pub request: &'a Request,
}

impl<'a> RequestEnvelope<'a> {
    pub fn new(request: &'a Request) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            request,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseEnvelope {
    pub version: u32,
    pub response: Response,
}

impl ResponseEnvelope {
    pub fn new(response: Response) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            response,
        }
    }
}

/// What a client asks. A field left out by an older client takes its default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Liveness and version check; allowed to anyone.
    Ping,
    /// Opens a PAM authentication conversation on this connection.
    AuthStart(AuthStart),
    /// The reply to the last `prompt`.
    Answer {
        text: SecretString,
    },
    /// Enrollment and lock state of one account (`None`: the caller's own).
    Status {
        #[serde(default)]
        user: Option<String>,
    },
    /// Creates a pending TOTP enrollment and returns its URI. It becomes
    /// active only after `enroll_totp_confirm` with a current code.
    EnrollTotpBegin {
        #[serde(default)]
        user: Option<String>,
        /// Replace an active TOTP factor (root and admins only).
        #[serde(default)]
        replace: bool,
        /// Go on although no local account has this name.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
        /// A `[totp.profiles.NAME]` of mfad.toml (`None`: `[totp]` itself).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
    },
    EnrollTotpConfirm {
        #[serde(default)]
        user: Option<String>,
        code: SecretString,
    },
    UserList,
    UserShow {
        user: String,
    },
    /// Removes every factor and counter of a user.
    UserReset {
        user: String,
    },
    /// Lifts every lock on a user and clears the failure counters.
    UserUnlock {
        user: String,
    },
    AuditQuery {
        #[serde(default)]
        user: Option<String>,
        #[serde(default = "default_audit_limit")]
        limit: u32,
        /// Only rows older than this id: the next page after a reply
        /// whose `more` was set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<i64>,
    },
    /// The logins of one account (`None`: the caller's own), newest first:
    /// the audit rows of its authentications. Answered with `audit`.
    LoginHistory {
        #[serde(default)]
        user: Option<String>,
        #[serde(default = "default_audit_limit")]
        limit: u32,
    },
    /// Checks the hash chain of the stored audit rows (root and admins).
    AuditVerify,
    /// Streams every new audit event as an `audit_event` response until the
    /// client closes the connection (root and admins).
    AuditFollow,
    /// Issues a new set of backup codes, voiding the old ones.
    BackupCodesRegenerate {
        #[serde(default)]
        user: Option<String>,
    },
    /// Sets a phone number or email address. Unless `verified` (root and
    /// admins only), it stays pending and a code is sent to it.
    ContactSet {
        #[serde(default)]
        user: Option<String>,
        channel: Channel,
        address: SecretString,
        #[serde(default)]
        verified: bool,
        /// Go on although no local account has this name.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Confirms a pending destination with the code sent to it.
    ContactVerify {
        #[serde(default)]
        user: Option<String>,
        channel: Channel,
        code: SecretString,
    },
    /// Removes a destination, verified and pending.
    ContactClear {
        #[serde(default)]
        user: Option<String>,
        channel: Channel,
    },
    /// Loads the policy file again (as SIGHUP does); an invalid file keeps
    /// the policy in force and the reply lists its problems.
    PolicyReload,
    /// Stores `text` as the fleet's policy (checked as a reload checks a
    /// file) and has every host of the fleet put it in force. Answered
    /// with `policy_loaded`.
    PolicyPush {
        text: String,
    },
    /// Which policy version each host of the fleet has in force.
    PolicyStatus,
    PolicyHistory,
    /// One stored version (`None`: the one in force).
    PolicyShow {
        #[serde(default)]
        version: Option<i64>,
    },
    /// What would happen to this login, and why, without touching any state.
    PolicyExplain {
        user: String,
        service: String,
        #[serde(default)]
        rhost: Option<String>,
        #[serde(default)]
        tty: Option<String>,
        /// The SSH public key of sshd's first method (`ssh-ed25519 AAAA...`):
        /// whether it counts as a trusted device.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_key: Option<String>,
        /// The session the login would come from (step-up), by id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<i64>,
    },
    /// `mfactl doctor`: connect and bind to the `[directory]`, then look
    /// up `user` (`None`: the caller) there, uncached, reporting each step.
    DirectoryCheck {
        #[serde(default)]
        user: Option<String>,
    },
    /// `mfactl doctor`: mfad's checks of its store (the connection, TLS and
    /// the schema of a fleet's PostgreSQL; the SQLite file).
    StoreCheck,
    /// `mfactl key add` (root): a new key appended to the key file, staged:
    /// held but not used until `key rotate` (copy the file to every host
    /// of a fleet in between).
    KeyAdd,
    /// `mfactl key rotate` (root): the newest key of the key file (a new
    /// one on a single host if none is staged) seals from now on, and every
    /// sealed value is re-sealed with it.
    KeyRotate,
    /// `mfactl key status` (root): the keys and how many values each seals.
    KeyStatus,
    /// `mfactl policy check`: which of these `%group` names NSS (on mfad's
    /// machine) and mfad's `[directory]` know, and which TOTP profiles
    /// mfad.toml defines.
    GroupSources {
        groups: Vec<String>,
    },
    /// From the session hook of pam_mfa.so (root only): a login session
    /// opened. The daemon reads the audit session id of the caller itself.
    SessionOpen(SessionReport),
    /// From the session hook of pam_mfa.so (root only): the session ended.
    SessionClose(SessionReport),
    /// Moves a TOTP factor over from another tool (root and admins): the
    /// secret sealed as an enrollment seals it, active at once; `scratch`
    /// codes become the account's backup codes. Answered with `done`.
    ImportTotp(ImportTotp),
    /// Active login sessions: every one for root and admins, the caller's
    /// own for anyone else.
    SessionList,
    /// Ends a session: its processes are terminated (root and admins; a
    /// user their own).
    SessionKill {
        id: i64,
    },
    /// Clears what a session proved, so that its next step-up asks every
    /// factor (root and admins).
    SessionStepup {
        id: i64,
    },
    /// Trusted devices of one account (`None`: the caller's own).
    DeviceList {
        #[serde(default)]
        user: Option<String>,
    },
    /// Revokes one trusted device (`None`: of the caller's own account).
    DeviceRevoke {
        #[serde(default)]
        user: Option<String>,
        id: i64,
    },
    /// A change to the caller's own factors that needs a fresh proof: the
    /// current code of a factor still held (TOTP) or a backup code, checked
    /// and counted like a login. `replace_totp` answers with an
    /// `enrollment_offer` (confirmed with `enroll_totp_confirm`), `disable`
    /// with `done`.
    SelfChange {
        change: SelfChange,
        proof: SecretString,
    },
}

/// What `self_change` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelfChange {
    /// A new TOTP secret; the old one works until the new one is confirmed.
    ReplaceTotp,
    /// Every factor removed (only where mfad.toml allows it).
    Disable,
}

/// A TOTP factor read from another tool's file.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportTotp {
    pub user: String,
    /// The seed, base32 (RFC 4648, no padding).
    pub secret: SecretString,
    pub digits: u32,
    pub period: u64,
    /// One-time codes of the old tool (Google Authenticator's scratch codes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scratch: Vec<SecretString>,
    /// Where it came from, for the audit row (`google-authenticator /home/a/.google_authenticator`).
    pub source: String,
}

impl std::fmt::Debug for ImportTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportTotp")
            .field("user", &self.user)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("scratch", &self.scratch.len())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What the session hooks of pam_mfa.so send. Nothing here identifies the
/// session: the daemon takes that from the caller's pid.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionReport {
    pub user: String,
    pub service: String,
    /// The one-time ticket of the authentication that led to this session.
    #[serde(default)]
    pub ticket: Option<SecretString>,
    #[serde(default)]
    pub rhost: Option<String>,
    #[serde(default)]
    pub tty: Option<String>,
}

fn default_audit_limit() -> u32 {
    50
}

/// An out-of-band channel: where sent codes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Sms, Channel::Email];

    /// The wire, policy and audit name.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }

    /// What the destination is called.
    pub fn destination(self) -> &'static str {
        match self {
            Channel::Sms => "phone number",
            Channel::Email => "email address",
        }
    }
}

/// A destination as people see it: masked, never whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInfo {
    pub channel: Channel,
    /// The verified destination, masked; the one login codes go to.
    #[serde(default)]
    pub verified: Option<String>,
    #[serde(default)]
    pub verified_at: Option<i64>,
    /// A destination waiting for its code, masked.
    #[serde(default)]
    pub pending: Option<String>,
    /// `verified` comes from the directory (`[directory]` in mfad.toml),
    /// not from `mfactl`.
    #[serde(default)]
    pub from_directory: bool,
}

/// The PAM environment variable in which an application (`mfactl
/// confirm`) names why it asks: pam_mfa.so passes it on as
/// [`AuthStart::reason`], for the audit log.
pub const REASON_ENV: &str = "MFAD_REASON";

/// What the PAM module knows about the login being attempted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthStart {
    pub user: String,
    pub service: String,
    #[serde(default)]
    pub rhost: Option<String>,
    #[serde(default)]
    pub tty: Option<String>,
    #[serde(default)]
    pub ruser: Option<String>,
    /// sshd's `SSH_AUTH_INFO_0` PAM variable: the methods (and the public
    /// key) that passed before this one.
    #[serde(default)]
    pub ssh_auth_info: Option<String>,
    /// Why the application asks ([`REASON_ENV`]), for the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Pong {
        daemon_version: String,
        protocol: u32,
    },
    /// Ask the user something; answered with `answer`.
    Prompt {
        echo: bool,
        text: String,
    },
    /// Show text to the user; no answer expected.
    Info {
        text: String,
    },
    /// Show an error to the user; no answer expected.
    ErrorMsg {
        text: String,
    },
    /// The end of an authentication conversation.
    Verdict {
        decision: Decision,
        message: String,
        /// After `allow`: a one-time ticket the session hook hands back, so
        /// the session learns which factors this login passed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ticket: Option<SecretString>,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        supported: Vec<u32>,
    },
    Status(UserStatus),
    EnrollmentOffer(EnrollmentOffer),
    Users {
        users: Vec<UserSummary>,
    },
    Done {
        message: String,
    },
    Audit {
        rows: Vec<AuditRow>,
        /// The reply stopped short of the rows asked for because they would
        /// not fit one frame: ask again for the rows before the last one.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// The outcome of `audit_verify`.
    AuditVerified(AuditVerification),
    /// One `mfad.audit.v1` record, after `audit_follow`.
    AuditEvent {
        record: serde_json::Value,
    },
    /// Backup codes, shown once; each works once.
    BackupCodes {
        user: String,
        codes: Vec<SecretString>,
        message: String,
    },
    /// The outcome of a policy reload.
    PolicyLoaded {
        version: i64,
        /// False when the policy in force was kept.
        changed: bool,
        /// True when the file was not loaded (it has errors, or cannot be
        /// read): the version in force stays.
        #[serde(default)]
        rejected: bool,
        /// Problems found, one per line (warnings, or why it was rejected).
        diagnostics: Vec<String>,
    },
    PolicyVersions {
        versions: Vec<PolicyVersion>,
    },
    /// Each host and the policy version in force there.
    PolicyStatus {
        hosts: Vec<HostPolicy>,
        /// The latest version pushed to the fleet (`None`: nothing pushed,
        /// or a daemon with no fleet).
        #[serde(default)]
        pushed: Option<i64>,
    },
    PolicyText {
        version: PolicyVersion,
        text: String,
    },
    Explanation(Explanation),
    Sessions {
        sessions: Vec<SessionInfo>,
    },
    Devices {
        user: String,
        devices: Vec<DeviceInfo>,
    },
    /// The steps of a `directory_check`, in order.
    DirectoryChecked {
        steps: Vec<CheckStep>,
    },
    StoreChecked {
        steps: Vec<CheckStep>,
    },
    /// The key ring after a `key add`, `key rotate` or `key status`.
    Keys {
        keys: Vec<KeyInfo>,
        /// What was done, for the admin.
        message: String,
        /// Values re-sealed by a rotation.
        #[serde(default)]
        resealed: Option<u64>,
    },
    GroupSources {
        groups: Vec<GroupSource>,
        /// The `[totp.profiles.NAME]` names of mfad.toml, for a policy's
        /// `totp_profile`; `None` from a daemon older than the field.
        #[serde(default)]
        totp_profiles: Option<Vec<String>>,
    },
}

/// Who knows a group named in a policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupSource {
    pub name: String,
    pub nss: bool,
    /// `None`: mfad has no `[directory]`, or it did not answer.
    #[serde(default)]
    pub directory: Option<bool>,
}

/// One key of the key ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: u32,
    pub role: KeyRole,
    /// Sealed values in the store under this key.
    pub values: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// Seals new values.
    Seals,
    /// Opens what it sealed before a rotation.
    Old,
    /// In the key file, not used until `mfactl key rotate`.
    Staged,
}

impl KeyRole {
    pub fn name(self) -> &'static str {
        match self {
            KeyRole::Seals => "seals",
            KeyRole::Old => "old",
            KeyRole::Staged => "staged",
        }
    }
}

/// One step of a directory check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckStep {
    pub check: String,
    /// `ok`, `warn` or `fail`.
    pub status: String,
    pub message: String,
}

/// A factor a session passed, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassedFactor {
    pub factor: String,
    pub at: i64,
}

/// The policy version in force on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPolicy {
    pub host: String,
    pub version: i64,
    /// Since when.
    pub since: i64,
}

/// One active login session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionInfo {
    pub id: i64,
    /// The host it runs on, in a fleet (`None` from a daemon of one host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The kernel's audit session id.
    pub audit_session: u32,
    pub user: String,
    pub service: String,
    #[serde(default)]
    pub rhost: Option<String>,
    #[serde(default)]
    pub tty: Option<String>,
    pub opened_at: i64,
    #[serde(default)]
    pub factors: Vec<PassedFactor>,
    /// The trusted device that stood in for the factors, if one did.
    #[serde(default)]
    pub device: Option<String>,
    /// Processes in the session now.
    #[serde(default)]
    pub processes: u32,
}

/// One trusted device: metadata only (the key is stored as a keyed hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    pub id: i64,
    /// e.g. "ssh-ed25519"
    pub key_type: String,
    /// "SHA256:..." as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    #[serde(default)]
    pub first_ip: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default)]
    pub last_used: Option<i64>,
}

/// A risk signal computed for a login before the policy is matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSignal {
    /// The policy condition it feeds: "new_network", "new_country".
    pub name: String,
    pub value: bool,
    /// Why, in words.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyVersion {
    pub version: i64,
    pub sha256: String,
    pub loaded_at: i64,
    /// "startup", "SIGHUP", or "uid N" for `mfactl policy reload`.
    pub loaded_by: String,
    #[serde(default)]
    pub in_force: bool,
}

/// One rule consulted by `explain`, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainedRule {
    pub rule: String,
    pub line: usize,
    pub matched: bool,
    /// Why it did not match (empty for the matching rule).
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Explanation {
    pub policy_version: i64,
    pub rules: Vec<ExplainedRule>,
    /// The matching rule, if any (none: the login is denied).
    #[serde(default)]
    pub rule: Option<String>,
    /// The requirement as written: "none", "deny", "totp", "any of [...]", "chain [...]".
    pub requirement: String,
    /// Factors the user has enrolled, among those the rule names.
    #[serde(default)]
    pub enrolled: Vec<String>,
    /// What the user would be asked for, or the verdict without a prompt.
    pub outcome: String,
    /// The risk signals the rules were matched with.
    #[serde(default)]
    pub signals: Vec<RiskSignal>,
    /// What happens to the live sessions of the matching rule when risk
    /// rises (its `on_risk`), when it says anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_risk: Option<String>,
    /// What a login under the matching rule does when the shared database
    /// is unreachable (its `store_unreachable`); only on a PostgreSQL host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_unreachable: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The user proved what the policy asks.
    Allow,
    Deny,
    Locked,
    /// Nothing was verified and the policy lets the login through (it
    /// requires nothing, or lets unenrolled users in): pam_mfa returns
    /// PAM_IGNORE, so it is never the reason a stack succeeds.
    Pass,
}

/// Stable error codes; clients branch on these, people read `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    UnsupportedVersion,
    UnsupportedRequest,
    BadRequest,
    FrameTooLarge,
    PermissionDenied,
    NoSuchUser,
    NotEnrolled,
    AlreadyEnrolled,
    NoPendingEnrollment,
    /// No such session or trusted device.
    NotFound,
    WrongCode,
    /// The channel is not set up in mfad's configuration.
    NotConfigured,
    /// The SMS provider or mail server did not take the message.
    DeliveryFailed,
    /// A code was sent moments ago, or too many this hour.
    TooManyCodes,
    Busy,
    Timeout,
    Internal,
    /// A code this build does not know (a newer daemon).
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpInfo {
    pub algorithm: String,
    pub digits: u32,
    pub period: u64,
    pub enrolled_at: i64,
    #[serde(default)]
    pub last_used: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockInfo {
    pub channel: String,
    /// The source the counter is for (`*` for the whole account).
    pub source: String,
    pub failures: u32,
    #[serde(default)]
    pub locked_until: Option<i64>,
}

/// Metadata about one account: never a secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserStatus {
    pub user: String,
    #[serde(default)]
    pub totp: Option<TotpInfo>,
    #[serde(default)]
    pub totp_pending: bool,
    /// Unused backup codes left.
    #[serde(default)]
    pub backup_codes: u32,
    #[serde(default)]
    pub locks: Vec<LockInfo>,
    /// Phone number and email address, masked.
    #[serde(default)]
    pub contacts: Vec<ContactInfo>,
    /// Trusted devices not yet expired.
    #[serde(default)]
    pub trusted_devices: u32,
    /// The last login that was let in (its audit row; boxed, it is large).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<Box<AuditRow>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSummary {
    pub user: String,
    pub totp_enrolled: bool,
    #[serde(default)]
    pub last_used: Option<i64>,
    pub locked: bool,
}

/// A pending TOTP enrollment, shown once to the person enrolling.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentOffer {
    pub user: String,
    pub uri: SecretString,
    pub secret_base32: SecretString,
    pub issuer: String,
    pub algorithm: String,
    pub digits: u32,
    pub period: u64,
    /// Unix time after which the pending enrollment is discarded.
    pub expires: i64,
}

impl std::fmt::Debug for EnrollmentOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentOffer")
            .field("user", &self.user)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRow {
    pub id: i64,
    pub time: i64,
    pub user: String,
    pub service: String,
    #[serde(default)]
    pub rhost: Option<String>,
    #[serde(default)]
    pub tty: Option<String>,
    pub channel: String,
    pub decision: String,
    pub reason: String,
    pub peer_uid: u32,
    /// The policy rule and version that decided (authentication rows).
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub policy_version: Option<i64>,
    /// Who asked: the PAM_RUSER of a login, and the real uid of the
    /// process that asked (who ran su or sudo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_uid: Option<u32>,
    /// The host that wrote the row: in a fleet, rows of every host share
    /// one database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// What `audit_verify` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditVerification {
    /// Rows read.
    pub rows: u64,
    /// Rows older than the chain, not checked.
    #[serde(default)]
    pub unchained: u64,
    /// The oldest chained row and the hash it links to, trusted as the
    /// start (earlier rows may have been pruned).
    #[serde(default)]
    pub anchor_id: Option<i64>,
    #[serde(default)]
    pub anchor_hash: Option<String>,
    /// The newest chained row and its hash.
    #[serde(default)]
    pub head_id: Option<i64>,
    #[serde(default)]
    pub head_hash: Option<String>,
    /// How many problems were found; at most 100 are listed.
    pub problem_count: u64,
    pub problems: Vec<AuditProblem>,
}

/// A row that breaks the chain, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditProblem {
    pub id: i64,
    pub problem: String,
}

/// Why an incoming request frame could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("protocol version {got} is not supported (this daemon speaks {SUPPORTED_VERSIONS:?})")]
    UnsupportedVersion { got: u32 },
    #[error("unknown request type {0:?}")]
    UnsupportedRequest(String),
}

impl RequestError {
    /// The wire response that reports this error.
    pub fn to_response(&self) -> Response {
        let (code, supported) = match self {
            RequestError::Malformed(_) => (ErrorCode::BadRequest, Vec::new()),
            RequestError::UnsupportedVersion { .. } => {
                (ErrorCode::UnsupportedVersion, SUPPORTED_VERSIONS.to_vec())
            }
            RequestError::UnsupportedRequest(_) => (ErrorCode::UnsupportedRequest, Vec::new()),
        };
        Response::Error {
            code,
            message: self.to_string(),
            supported,
        }
    }
}

/// Decodes a request frame body, checking the version before the request so
/// that a client of another version gets a clear answer.
pub fn parse_request(body: &[u8]) -> Result<Request, RequestError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        version: u32,
        request: serde_json::Value,
    }
    let malformed = |e: serde_json::Error| RequestError::Malformed(e.to_string());
    crate::strict::unique_keys(body).map_err(malformed)?;
    let raw: Raw = serde_json::from_slice(body).map_err(malformed)?;
    if !SUPPORTED_VERSIONS.contains(&raw.version) {
        return Err(RequestError::UnsupportedVersion { got: raw.version });
    }
    let kind = raw
        .request
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    // serde ignores extra fields beside the tag of a variant without fields.
    let extra = raw.request.as_object().is_some_and(|o| o.len() > 1);
    let request: Request = serde_json::from_value(raw.request).map_err(|e| {
        let msg = e.to_string();
        match kind {
            Some(kind) if msg.starts_with("unknown variant") => {
                RequestError::UnsupportedRequest(kind)
            }
            _ => RequestError::Malformed(msg),
        }
    })?;
    if extra && request.has_no_fields() {
        return Err(RequestError::Malformed(
            "unknown field beside `type` in a request that has no fields".to_owned(),
        ));
    }
    Ok(request)
}

impl Request {
    /// Exhaustive on purpose: a new request type must say whether it has fields.
    fn has_no_fields(&self) -> bool {
        match self {
            Request::Ping
            | Request::UserList
            | Request::PolicyReload
            | Request::PolicyStatus
            | Request::PolicyHistory
            | Request::AuditVerify
            | Request::AuditFollow
            | Request::KeyAdd
            | Request::KeyRotate
            | Request::KeyStatus
            | Request::SessionList => true,
            Request::AuthStart(_)
            | Request::Answer { .. }
            | Request::Status { .. }
            | Request::EnrollTotpBegin { .. }
            | Request::EnrollTotpConfirm { .. }
            | Request::UserShow { .. }
            | Request::UserReset { .. }
            | Request::UserUnlock { .. }
            | Request::AuditQuery { .. }
            | Request::LoginHistory { .. }
            | Request::BackupCodesRegenerate { .. }
            | Request::ContactSet { .. }
            | Request::ContactVerify { .. }
            | Request::ContactClear { .. }
            | Request::PolicyShow { .. }
            | Request::PolicyPush { .. }
            | Request::PolicyExplain { .. }
            | Request::ImportTotp(_)
            | Request::SessionOpen(_)
            | Request::SessionClose(_)
            | Request::SessionKill { .. }
            | Request::SessionStepup { .. }
            | Request::DeviceList { .. }
            | Request::DeviceRevoke { .. }
            | Request::DirectoryCheck { .. }
            | Request::StoreCheck
            | Request::GroupSources { .. }
            | Request::SelfChange { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_and_redaction() {
        let req = Request::Answer {
            text: SecretString::new("987654"),
        };
        let body = serde_json::to_vec(&RequestEnvelope::new(&req)).unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"version":1,"request":{"type":"answer","text":"987654"}}"#
        );
        let parsed = parse_request(&body).unwrap();
        assert!(!format!("{parsed:?}").contains("987654"));
        assert!(matches!(parsed, Request::Answer { text } if text.expose() == "987654"));
    }

    #[test]
    fn unknown_version_is_named() {
        let err = parse_request(br#"{"version":9,"request":{"type":"ping"}}"#).unwrap_err();
        assert!(matches!(err, RequestError::UnsupportedVersion { got: 9 }));
        assert!(
            matches!(err.to_response(), Response::Error { code: ErrorCode::UnsupportedVersion, supported, .. } if supported == vec![1])
        );
    }

    #[test]
    fn unknown_request_type_and_malformed_requests() {
        let err = parse_request(br#"{"version":1,"request":{"type":"fly"}}"#).unwrap_err();
        assert!(matches!(err, RequestError::UnsupportedRequest(t) if t == "fly"));
        let err = parse_request(br#"{"version":1,"request":{"type":"answer"}}"#).unwrap_err();
        assert!(matches!(err, RequestError::Malformed(_)));
        assert!(matches!(
            parse_request(b"[]"),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            parse_request(b"{"),
            Err(RequestError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_fields_are_refused_and_newer_error_codes_are_unknown() {
        for body in [
            &br#"{"version":1,"extra":1,"request":{"type":"ping"}}"#[..],
            br#"{"version":1,"request":{"type":"ping","user":"root"}}"#,
            br#"{"version":1,"request":{"type":"user_list","user":"root"}}"#,
            br#"{"version":1,"request":{"type":"auth_start","user":"a","service":"s","future":true}}"#,
            br#"{"version":1,"request":{"type":"session_open","user":"a","service":"s","x":1}}"#,
            br#"{"version":1,"request":{"type":"status","user":null,"verified":true}}"#,
        ] {
            let err = parse_request(body).unwrap_err();
            assert!(
                matches!(&err, RequestError::Malformed(m) if m.contains("unknown field")),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [
            r#"{"type":"pong","daemon_version":"1","protocol":1,"more":0}"#,
            r#"{"type":"status","user":"u","flag":true}"#,
        ] {
            assert!(serde_json::from_str::<Response>(body).is_err(), "{body}");
        }
        let resp: Response =
            serde_json::from_str(r#"{"type":"error","code":"brand_new","message":"m"}"#).unwrap();
        assert!(matches!(
            resp,
            Response::Error {
                code: ErrorCode::Unknown,
                ..
            }
        ));
    }

    /// A frame naming a key twice is refused before anything reads it: the
    /// last `type` must not win.
    #[test]
    fn repeated_keys_are_refused() {
        for body in [
            &br#"{"version":1,"request":{"type":"ping","type":"user_reset","user":"a"}}"#[..],
            br#"{"version":1,"version":1,"request":{"type":"ping"}}"#,
            br#"{"version":1,"request":{"type":"status","user":"a","user":"b"}}"#,
        ] {
            let err = parse_request(body).unwrap_err();
            assert!(
                matches!(&err, RequestError::Malformed(m) if m.contains("duplicate key")),
                "{err}"
            );
            assert!(matches!(
                err.to_response(),
                Response::Error {
                    code: ErrorCode::BadRequest,
                    ..
                }
            ));
        }
    }

    #[test]
    fn enrollment_offer_debug_hides_the_secret() {
        let offer = EnrollmentOffer {
            user: "u".into(),
            uri: SecretString::new("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"),
            secret_base32: SecretString::new("JBSWY3DPEHPK3PXP"),
            issuer: "mfad".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            expires: 0,
        };
        assert!(!format!("{offer:?}").contains("JBSWY3DPEHPK3PXP"));
    }
}
