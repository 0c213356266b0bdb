//! From TOML text to a validated [`Policy`], collecting every problem with
//! its line and column instead of stopping at the first.

use super::Policy;
use super::diagnostic::{Diagnostic, Severity};
use super::matcher::Directory;
use super::rule::{
    Conditions, Factor, Host, OnRisk, PRIVILEGED_SERVICES, Requirement, Rule, StoreUnreachable,
    TrustedDevices, Unenrolled, UserMatch,
};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;
use toml::{Spanned, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    host: Option<RawHost>,
    #[serde(default)]
    service_groups: BTreeMap<String, Vec<Spanned<String>>>,
    #[serde(default, rename = "rule")]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    class: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    device_services: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    all: Option<Spanned<bool>>,
    host_class: Option<Spanned<Vec<String>>>,
    host_tags: Option<Spanned<Vec<String>>>,
    services: Option<Spanned<Vec<Spanned<String>>>>,
    users: Option<Spanned<Vec<Spanned<String>>>>,
    from: Option<Spanned<Vec<Spanned<String>>>>,
    new_network: Option<bool>,
    new_country: Option<bool>,
    require: Spanned<Value>,
    fresh: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    trusted_devices: Option<Spanned<Value>>,
    unenrolled: Option<Spanned<Value>>,
    on_risk: Option<Spanned<String>>,
    store_unreachable: Option<Spanned<String>>,
    totp_profile: Option<Spanned<String>>,
}

/// Everything found wrong, errors and warnings alike.
pub type Diagnostics = Vec<Diagnostic>;

/// Parses and validates `text`. The policy comes back only when there is no
/// error; warnings come back either way.
pub fn parse(text: &str, dir: &dyn Directory) -> (Option<Policy>, Diagnostics) {
    let raw: RawPolicy = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_owned();
            let hint = toml_hint(&message);
            let d = Diagnostic::error(text, span, message).hint(hint);
            return (None, vec![d]);
        }
    };
    let mut cx = Cx {
        text,
        diags: Vec::new(),
    };
    let host = raw
        .host
        .map(|h| Host {
            class: h.class,
            tags: h.tags,
            device_services: h
                .device_services
                .unwrap_or_else(|| Host::default().device_services),
        })
        .unwrap_or_default();
    let groups = service_groups(&mut cx, &raw.service_groups);
    let mut rules: Vec<Rule> = Vec::new();
    let mut names = HashSet::new();
    let mut catch_all: Option<String> = None;
    for spanned in &raw.rules {
        let span = spanned.span();
        let raw_rule = spanned.get_ref();
        let name = raw_rule.name.get_ref().clone();
        if !names.insert(name.clone()) {
            cx.error(
                raw_rule.name.span(),
                format!("a second rule is named {name:?}"),
                "rule names identify rules in the audit log: make each unique",
            );
        }
        if let Some(earlier) = &catch_all {
            cx.error(
                span.clone(),
                format!("rule {name:?} can never match: the catch-all rule {earlier:?} before it matches everything"),
                "move the catch-all to the end, or this rule above it",
            );
        }
        // A catch-all with a mistake elsewhere still shadows what follows.
        if raw_rule.all.as_ref().is_some_and(|a| *a.get_ref()) {
            catch_all.get_or_insert(name);
        }
        if let Some(rule) = rule(&mut cx, raw_rule, &groups, &host, dir, &rules) {
            rules.push(rule);
        }
    }
    if catch_all.is_none() {
        let end = text.len();
        cx.diags.push(
            Diagnostic::warning(
                text,
                end..end,
                "no catch-all rule: a login that matches no rule is denied",
            )
            .hint("end the file with a rule that has `all = true`"),
        );
    }
    let diags = cx.diags;
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return (None, diags);
    }
    (Some(Policy::new(host, rules, text.to_owned())), diags)
}

/// What to do about an error the TOML reader found before any policy check.
fn toml_hint(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "fix the key's spelling or remove it; the keys allowed here are listed above"
    } else if message.starts_with("missing field") {
        "add the key: every [[rule]] needs `name` and `require`"
    } else if message.starts_with("invalid type") {
        "give the key a value of the type named above (a \"string\", a [list], a { table } or true/false)"
    } else {
        "this is not valid TOML here: check the quotes, brackets and `key = value` syntax"
    }
}

struct Cx<'a> {
    text: &'a str,
    diags: Diagnostics,
}

impl Cx<'_> {
    fn error(&mut self, span: std::ops::Range<usize>, message: impl Into<String>, hint: &str) {
        let mut d = Diagnostic::error(self.text, span, message);
        if !hint.is_empty() {
            d = d.hint(hint);
        }
        self.diags.push(d);
    }

    fn warning(&mut self, span: std::ops::Range<usize>, message: impl Into<String>, hint: &str) {
        self.diags
            .push(Diagnostic::warning(self.text, span, message).hint(hint));
    }
}

fn service_groups(
    cx: &mut Cx<'_>,
    raw: &BTreeMap<String, Vec<Spanned<String>>>,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (name, members) in raw {
        let mut list = Vec::new();
        for m in members {
            if m.get_ref().starts_with('@') {
                cx.error(
                    m.span(),
                    format!(
                        "service group {name:?} names another group {:?}",
                        m.get_ref()
                    ),
                    "list plain service names in a group",
                );
            } else {
                list.push(m.get_ref().clone());
            }
        }
        out.insert(name.clone(), list);
    }
    out
}

fn rule(
    cx: &mut Cx<'_>,
    r: &RawRule,
    groups: &BTreeMap<String, Vec<String>>,
    host: &Host,
    dir: &dyn Directory,
    earlier: &[Rule],
) -> Option<Rule> {
    let errors_before = error_count(cx);
    let name = r.name.get_ref().clone();
    let when = conditions(cx, r, groups, host, dir);
    let require = requirement(cx, &r.require);
    if let Some(req) = &require {
        out_of_band_only(cx, r, req, earlier, host);
    }
    let fresh = fresh(cx, r.fresh.as_ref(), &require);
    let trusted_devices = r
        .trusted_devices
        .as_ref()
        .map_or(Some(TrustedDevices::Forbidden), |v| trusted(cx, v));
    if let (Some(Requirement::None | Requirement::Deny), Some(t)) = (&require, &r.trusted_devices)
        && matches!(trusted_devices, Some(TrustedDevices::Days(_)))
    {
        cx.warning(
            t.span(),
            "`trusted_devices` has no effect on a rule that requires no factor",
            "remove it",
        );
    }
    let unenrolled = r
        .unenrolled
        .as_ref()
        .map_or(Some(Unenrolled::Deny), |v| unenrolled(cx, v));
    if let (Some(Unenrolled::Enroll), Some(v)) = (unenrolled, &r.unenrolled) {
        enroll_only_where_safe(cx, v.span(), &when, require.as_ref());
    }
    let on_risk = r
        .on_risk
        .as_ref()
        .map_or(Some(OnRisk::None), |v| on_risk(cx, v));
    if let (Some(v), Some(OnRisk::Stepup | OnRisk::End), Some((names, _))) =
        (&r.on_risk, on_risk, &when.services)
        && names
            .iter()
            .all(|n| PRIVILEGED_SERVICES.contains(&n.as_str()))
    {
        cx.warning(
            v.span(),
            "`on_risk` has no effect on a rule for privileged services only: sessions are opened by sshd, login and the like, and the rule of that service decides",
            "put on_risk on the rule of the service that opens the session",
        );
    }
    let store_unreachable = r
        .store_unreachable
        .as_ref()
        .map_or(Some(StoreUnreachable::Deny), |v| store_unreachable(cx, v));
    if let (Some(v), Some(StoreUnreachable::Cached), Some(req)) =
        (&r.store_unreachable, store_unreachable, &require)
        && !req.factors().contains(&Factor::Totp)
    {
        cx.warning(
            v.span(),
            "`store_unreachable = \"cached\"` has no effect on a rule without \"totp\": only TOTP codes can be checked against a host's cache",
            "add \"totp\" to the rule's factors, or remove store_unreachable",
        );
    }
    let totp_profile = r
        .totp_profile
        .as_ref()
        .and_then(|v| totp_profile(cx, v, unenrolled, dir));
    if error_count(cx) > errors_before {
        return None;
    }
    let (line, _) = super::diagnostic::line_column(cx.text, r.name.span().start);
    Some(Rule {
        name,
        line,
        when,
        require: require?,
        fresh,
        trusted_devices: trusted_devices?,
        unenrolled: unenrolled?,
        on_risk: on_risk?,
        store_unreachable: store_unreachable?,
        totp_profile,
    })
}

fn error_count(cx: &Cx<'_>) -> usize {
    cx.diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count()
}

fn conditions(
    cx: &mut Cx<'_>,
    r: &RawRule,
    groups: &BTreeMap<String, Vec<String>>,
    host: &Host,
    dir: &dyn Directory,
) -> Conditions {
    let all = r.all.as_ref().is_some_and(|a| *a.get_ref());
    if let Some(a) = &r.all
        && !a.get_ref()
    {
        cx.error(
            a.span(),
            "`all = false` means nothing",
            "remove it, or write `all = true` for a catch-all",
        );
    }
    let mut when = Conditions {
        all,
        new_network: r.new_network,
        new_country: r.new_country,
        ..Default::default()
    };
    let has_condition = r.host_class.is_some()
        || r.host_tags.is_some()
        || r.services.is_some()
        || r.users.is_some()
        || r.from.is_some()
        || r.new_network.is_some()
        || r.new_country.is_some();
    if all && has_condition {
        cx.error(
            r.all.as_ref().map_or(0..0, Spanned::span),
            "`all = true` cannot be combined with other conditions",
            "a catch-all matches everything: drop either `all` or the conditions",
        );
    }
    if !all && !has_condition {
        cx.error(
            r.name.span(),
            format!("rule {:?} has no condition", r.name.get_ref()),
            "add conditions, or `all = true` to make it an explicit catch-all",
        );
    }
    if let Some(list) = &r.host_class {
        non_empty(cx, list.span(), list.get_ref().is_empty(), "host_class");
        if host.class.is_none() {
            cx.warning(
                list.span(),
                "host_class is set but the policy has no [host] class, so this rule never matches",
                "add `[host]` with `class = \"...\"`",
            );
        }
        when.host_class = Some(list.get_ref().clone());
    }
    if let Some(list) = &r.host_tags {
        non_empty(cx, list.span(), list.get_ref().is_empty(), "host_tags");
        when.host_tags = Some(list.get_ref().clone());
    }
    if let Some(list) = &r.services {
        non_empty(cx, list.span(), list.get_ref().is_empty(), "services");
        let mut set = HashSet::new();
        for s in list.get_ref() {
            match s.get_ref().strip_prefix('@') {
                Some(group) => match groups.get(group) {
                    Some(members) => set.extend(members.iter().cloned()),
                    None => cx.error(
                        s.span(),
                        format!("unknown service group {:?}", s.get_ref()),
                        "define it under [service_groups]",
                    ),
                },
                None => {
                    set.insert(s.get_ref().clone());
                }
            }
        }
        when.services = Some((
            set,
            list.get_ref().iter().map(|s| s.get_ref().clone()).collect(),
        ));
    }
    if let Some(list) = &r.users {
        non_empty(cx, list.span(), list.get_ref().is_empty(), "users");
        let mut users = Vec::new();
        for u in list.get_ref() {
            match u.get_ref().strip_prefix('%') {
                Some(group) => {
                    if !dir.group_exists(group) {
                        cx.error(
                            u.span(),
                            format!("unknown group {group:?}"),
                            &format!(
                                "no such group through NSS (check `getent group {group}`) nor \
                                 in mfad's [directory], if it has one"
                            ),
                        );
                    }
                    users.push(UserMatch::Group(group.to_owned()));
                }
                None => users.push(UserMatch::User(u.get_ref().clone())),
            }
        }
        when.users = Some(users);
    }
    if let Some(list) = &r.from {
        non_empty(cx, list.span(), list.get_ref().is_empty(), "from");
        let mut nets = Vec::new();
        for n in list.get_ref() {
            match parse_net(n.get_ref()) {
                Some(net) => nets.push(net),
                None => cx.error(n.span(), format!("{:?} is not a network", n.get_ref()), "write a CIDR such as \"10.20.0.0/16\" or \"2001:db8::/32\", or a single address"),
            }
        }
        when.from = Some(nets);
    }
    when
}

fn non_empty(cx: &mut Cx<'_>, span: std::ops::Range<usize>, empty: bool, key: &str) {
    if empty {
        cx.error(
            span,
            format!("`{key}` is an empty list, so this rule never matches"),
            "list at least one value, or remove the key",
        );
    }
}

/// A CIDR, or a single address as a /32 or /128. An IPv4-mapped IPv6
/// network (`::ffff:10.0.0.0/104`) becomes the IPv4 network it stands for,
/// since the matcher compares mapped sources as IPv4.
pub fn parse_net(s: &str) -> Option<IpNet> {
    let net = s
        .parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))?
        .trunc();
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
    {
        return ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
            .ok()
            .map(IpNet::V4);
    }
    Some(net)
}

fn requirement(cx: &mut Cx<'_>, v: &Spanned<Value>) -> Option<Requirement> {
    let hint =
        "write \"none\", \"deny\", a factor such as \"totp\", { any = [...] } or { chain = [...] }";
    match v.get_ref() {
        Value::String(s) if s == "none" => Some(Requirement::None),
        Value::String(s) if s == "deny" => Some(Requirement::Deny),
        Value::String(s) => match Factor::parse(s) {
            Some(f) => Some(Requirement::Any(vec![f])),
            None => {
                cx.error(
                    v.span(),
                    format!("unknown factor {s:?} (known: {})", Factor::known()),
                    hint,
                );
                None
            }
        },
        Value::Table(t) if t.len() == 1 && (t.contains_key("any") || t.contains_key("chain")) => {
            let (key, list) = t.iter().next()?;
            let Value::Array(items) = list else {
                cx.error(v.span(), format!("`{key}` must be a list of factors"), hint);
                return None;
            };
            let mut factors = Vec::new();
            for item in items {
                match item.as_str().and_then(Factor::parse) {
                    Some(f) if factors.contains(&f) => {
                        cx.error(
                            v.span(),
                            format!("factor {:?} is listed twice", f.name()),
                            "list each factor once",
                        );
                    }
                    Some(f) => factors.push(f),
                    None => cx.error(
                        v.span(),
                        format!("unknown factor {item} (known: {})", Factor::known()),
                        hint,
                    ),
                }
            }
            if items.is_empty() {
                cx.error(
                    v.span(),
                    format!("an empty `{key}` can never be satisfied"),
                    "list at least one factor, or use \"deny\"",
                );
                return None;
            }
            (factors.len() == items.len()).then(|| {
                if key == "any" {
                    Requirement::Any(factors)
                } else {
                    Requirement::Chain(factors)
                }
            })
        }
        _ => {
            cx.error(v.span(), "`require` is not a requirement", hint);
            None
        }
    }
}

/// Services that grant root, besides any `@group`.
const PRIVILEGED: &[&str] = &["sudo", "sudo-i", "su", "su-l", "pkexec"];

/// Warns when a code sent by SMS or email alone opens a privileged service
/// (a rule naming a service group, sudo or su; or naming no service at all,
/// where sudo or su is not always decided by an earlier rule): such codes
/// can be intercepted (a swapped SIM, a read mailbox).
fn out_of_band_only(
    cx: &mut Cx<'_>,
    r: &RawRule,
    require: &Requirement,
    earlier: &[Rule],
    host: &Host,
) {
    let privileged: Vec<&str> = match &r.services {
        Some(services) => services
            .get_ref()
            .iter()
            .map(|s| s.get_ref().as_str())
            .filter(|s| s.starts_with('@') || PRIVILEGED.contains(s))
            .collect(),
        None => PRIVILEGED
            .iter()
            .copied()
            .filter(|p| !earlier.iter().any(|e| always_decides(e, p, host)))
            .collect(),
    };
    let sent = |f: &&Factor| f.channel().is_some();
    let alone: Vec<&str> = match require {
        Requirement::Any(fs) => fs.iter().filter(sent).map(|f| f.name()).collect(),
        Requirement::Chain(fs) if fs.iter().all(|f| sent(&f)) => {
            fs.iter().map(|f| f.name()).collect()
        }
        _ => Vec::new(),
    };
    if privileged.is_empty() || alone.is_empty() {
        return;
    }
    cx.warning(
        r.require.span(),
        format!(
            "rule {:?} lets a code sent by {} alone open a privileged service ({})",
            r.name.get_ref(),
            alone.join(" or "),
            privileged.join(", ")
        ),
        "sent codes can be intercepted (a swapped SIM, a read mailbox): chain them after totp, e.g. { chain = [\"totp\", \"sms\"] }",
    );
}

/// Whether `rule` decides every login to `service` on this host, so that
/// no later rule sees one.
fn always_decides(rule: &Rule, service: &str, host: &Host) -> bool {
    let w = &rule.when;
    w.all
        || (w
            .services
            .as_ref()
            .is_some_and(|(s, _)| s.contains(service))
            && super::matcher::host_miss(w, host).is_none()
            && w.users.is_none()
            && w.from.is_none()
            && w.new_network.is_none()
            && w.new_country.is_none())
}

fn fresh(
    cx: &mut Cx<'_>,
    raw: Option<&Spanned<BTreeMap<String, Spanned<String>>>>,
    require: &Option<Requirement>,
) -> Vec<(Factor, Duration)> {
    let Some(raw) = raw else { return Vec::new() };
    let mut out = Vec::new();
    for (name, value) in raw.get_ref() {
        let Some(factor) = Factor::parse(name) else {
            cx.error(
                raw.span(),
                format!(
                    "`fresh` names an unknown factor {name:?} (known: {})",
                    Factor::known()
                ),
                "",
            );
            continue;
        };
        if let Some(req) = require
            && !req.factors().contains(&factor)
        {
            cx.error(
                raw.span(),
                format!("`fresh` names {name:?}, which this rule does not require"),
                "list only factors from `require`",
            );
        }
        match parse_duration(value.get_ref()) {
            Some(d) => out.push((factor, d)),
            None => cx.error(
                value.span(),
                format!("{:?} is not a duration", value.get_ref()),
                "write a number and a unit: \"0s\", \"30m\", \"8h\", \"7d\"",
            ),
        }
    }
    out
}

/// "90s", "30m", "8h", "7d".
pub fn parse_duration(s: &str) -> Option<Duration> {
    let unit = s.chars().last()?;
    let digits = &s[..s.len() - unit.len_utf8()];
    // Digits only: u64's parser would also take "+8".
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Days a device is trusted for with `trusted_devices = true`.
pub const DEFAULT_TRUST_DAYS: u32 = 30;

fn trusted(cx: &mut Cx<'_>, v: &Spanned<Value>) -> Option<TrustedDevices> {
    let days = match v.get_ref() {
        Value::Boolean(false) => return Some(TrustedDevices::Forbidden),
        Value::Boolean(true) => return Some(TrustedDevices::Days(DEFAULT_TRUST_DAYS)),
        Value::Table(t) if t.len() == 1 => t.get("days").and_then(Value::as_integer),
        _ => None,
    };
    match days
        .and_then(|d| u32::try_from(d).ok())
        .filter(|d| (1..=365).contains(d))
    {
        Some(d) => Some(TrustedDevices::Days(d)),
        None => {
            cx.error(
                v.span(),
                "`trusted_devices` must be false, true (30 days) or { days = N } with N from 1 to 365",
                "",
            );
            None
        }
    }
}

/// `unenrolled = "enroll"` sets up TOTP inside a login: only for services
/// the rule names, none of them privileged (a sudo or su prompt is reached
/// from someone's session, and must not be where a factor is first set up).
fn enroll_only_where_safe(
    cx: &mut Cx<'_>,
    span: std::ops::Range<usize>,
    when: &Conditions,
    require: Option<&Requirement>,
) {
    match &when.services {
        None => cx.error(
            span.clone(),
            "`unenrolled = \"enroll\"` needs a `services` list: enrollment at login is for chosen services only",
            "add services = [\"sshd\"] (or the services it is for)",
        ),
        Some((names, _)) => {
            let mut bad: Vec<&str> = PRIVILEGED_SERVICES
                .into_iter()
                .filter(|p| names.contains(*p))
                .collect();
            bad.sort_unstable();
            if !bad.is_empty() {
                cx.error(
                    span.clone(),
                    format!(
                        "`unenrolled = \"enroll\"` is never allowed for {}: a factor must not be first set up at a privileged prompt",
                        bad.join(", ")
                    ),
                    "use a separate rule for those services",
                );
            }
        }
    }
    if require.is_some_and(|r| !r.factors().contains(&Factor::Totp)) {
        cx.error(
            span,
            "`unenrolled = \"enroll\"` sets up TOTP, which this rule does not ask for",
            "add \"totp\" to the rule's factors",
        );
    }
}

fn unenrolled(cx: &mut Cx<'_>, v: &Spanned<Value>) -> Option<Unenrolled> {
    let parsed = match v.get_ref() {
        Value::String(s) if s == "deny" => Some(Unenrolled::Deny),
        Value::String(s) if s == "allow" => Some(Unenrolled::Allow),
        Value::String(s) if s == "enroll" => Some(Unenrolled::Enroll),
        Value::Table(t) if t.len() == 1 => t
            .get("grace_until")
            .and_then(|d| match d {
                Value::String(s) => Some(s.clone()),
                Value::Datetime(dt) => Some(dt.to_string()),
                _ => None,
            })
            .and_then(|s| end_of_day(&s))
            .map(Unenrolled::GraceUntil),
        _ => None,
    };
    if parsed.is_none() {
        cx.error(
            v.span(),
            "`unenrolled` must be \"deny\", \"allow\", \"enroll\" or { grace_until = \"YYYY-MM-DD\" }",
            "",
        );
    }
    parsed
}

/// The TOTP profile a user enrolls with at login under this rule.
fn totp_profile(
    cx: &mut Cx<'_>,
    v: &Spanned<String>,
    unenrolled: Option<Unenrolled>,
    dir: &dyn Directory,
) -> Option<String> {
    let name = v.get_ref();
    if dir.totp_profile_exists(name) == Some(false) {
        cx.error(
            v.span(),
            format!("no TOTP profile {name:?} in mfad.toml"),
            "define it under [totp.profiles] in mfad.toml, or name a profile defined there",
        );
        return None;
    }
    if unenrolled != Some(Unenrolled::Enroll) {
        cx.warning(
            v.span(),
            "`totp_profile` has no effect without unenrolled = \"enroll\": it chooses how a user enrolls at login; a code is always checked as the factor was enrolled",
            "add unenrolled = \"enroll\", or enroll with `mfactl enroll totp --profile NAME`",
        );
    }
    Some(name.clone())
}

fn on_risk(cx: &mut Cx<'_>, v: &Spanned<String>) -> Option<OnRisk> {
    let parsed = [OnRisk::None, OnRisk::Stepup, OnRisk::End]
        .into_iter()
        .find(|o| o.name() == v.get_ref());
    if parsed.is_none() {
        cx.error(
            v.span(),
            format!("unknown `on_risk` {:?}", v.get_ref()),
            "use \"none\" (the default), \"stepup\" (the session's next step-up asks every factor) or \"end\" (the session is ended)",
        );
    }
    parsed
}

fn store_unreachable(cx: &mut Cx<'_>, v: &Spanned<String>) -> Option<StoreUnreachable> {
    let parsed = [StoreUnreachable::Deny, StoreUnreachable::Cached]
        .into_iter()
        .find(|o| o.name() == v.get_ref());
    if parsed.is_none() {
        cx.error(
            v.span(),
            format!("unknown `store_unreachable` {:?}", v.get_ref()),
            "use \"deny\" (the default: the login is denied) or \"cached\" (a user who logged in on this host while a \"cached\" rule was in force may pass with a TOTP code from this host's cache)",
        );
    }
    parsed
}

/// The first second after the given UTC day, "YYYY-MM-DD".
fn end_of_day(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days + 1) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_dates() {
        assert_eq!(parse_duration("8h"), Some(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("8"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("-1h"), None);
        assert_eq!(parse_duration("+8h"), None);
        assert_eq!(parse_duration(" 8h"), None);
        assert_eq!(end_of_day("1970-01-01"), Some(86_400));
        assert_eq!(end_of_day("2000-02-29"), Some(951_868_800));
        assert_eq!(end_of_day("2000-13-01"), None);
    }

    #[test]
    fn networks() {
        assert_eq!(
            parse_net("10.20.0.0/16").unwrap().to_string(),
            "10.20.0.0/16"
        );
        assert_eq!(
            parse_net("10.20.1.2/16").unwrap().to_string(),
            "10.20.0.0/16"
        );
        assert_eq!(parse_net("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(
            parse_net("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert!(parse_net("10.0.0.0/33").is_none());
        assert!(parse_net("example.com").is_none());
    }
}
