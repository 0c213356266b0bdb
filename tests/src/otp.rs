//! TOTP codes from an independent generator: the real `oathtool` (OATH
//! Toolkit), never the daemon's own code path.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Seconds since the Unix epoch by the host clock (the daemon's clock too).
#[allow(clippy::disallowed_methods)] // The tests read the same clock the daemon does.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds left in the current time step of `period` seconds.
pub fn secs_left_in_step(period: u64) -> u64 {
    period - now_unix() % period
}

/// Sleeps until at least `min_left` seconds remain in the current step, so
/// that codes computed now keep their meaning (previous, current, next step)
/// for the daemon during the next `min_left` seconds.
pub fn wait_for_fresh_step(period: u64, min_left: u64) {
    let left = secs_left_in_step(period);
    if left < min_left.min(period) {
        std::thread::sleep(Duration::from_secs(left) + Duration::from_millis(200));
    }
}

/// The TOTP code of `secret_base32` at the step `time_offset_steps` away from
/// now, from `oathtool --totp=ALG -b -d DIGITS -s PERIODs [-N "now ± N seconds"]`.
/// The secret goes through stdin, not argv.
pub fn oathtool_totp(
    secret_base32: &str,
    algorithm: &str,
    digits: u32,
    period: u64,
    time_offset_steps: i64,
) -> String {
    let mut args = vec![
        format!("--totp={}", algorithm.to_ascii_uppercase()),
        "-b".to_owned(),
        "-d".to_owned(),
        digits.to_string(),
        "-s".to_owned(),
        format!("{period}s"),
    ];
    if time_offset_steps != 0 {
        let sign = if time_offset_steps > 0 { '+' } else { '-' };
        let secs = time_offset_steps.unsigned_abs() * period;
        args.push("-N".to_owned());
        args.push(format!("now {sign} {secs} seconds"));
    }
    args.push("-".to_owned());
    oathtool(&args, secret_base32)
}

/// The TOTP code of `secret_base32` at Unix time `unix_time`.
pub fn oathtool_totp_at(
    secret_base32: &str,
    algorithm: &str,
    digits: u32,
    period: u64,
    unix_time: u64,
) -> String {
    let args = [
        format!("--totp={}", algorithm.to_ascii_uppercase()),
        "-b".to_owned(),
        "-d".to_owned(),
        digits.to_string(),
        "-s".to_owned(),
        format!("{period}s"),
        "-N".to_owned(),
        format!("@{unix_time}"),
        "-".to_owned(),
    ];
    oathtool(&args, secret_base32)
}

fn oathtool(args: &[String], secret_base32: &str) -> String {
    let mut child = Command::new("oathtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run oathtool (apt-get install oathtool): {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{secret_base32}").expect("write the secret to oathtool");
    }
    let out = child.wait_with_output().expect("wait for oathtool");
    assert!(
        out.status.success(),
        "oathtool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()),
        "oathtool printed {code:?}"
    );
    code
}

/// The `secret` parameter of an `otpauth://` URI, percent-decoded.
pub fn secret_from_uri(uri: &str) -> String {
    let query = uri
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_else(|| panic!("no query in the URI {uri:?}"));
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap_or_else(|| panic!("no secret= in the URI {uri:?}"));
    percent_decode(value)
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B vectors (the 20-byte ASCII key "12345678901234567890").
    #[test]
    fn oathtool_matches_rfc6238() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(oathtool_totp_at(secret, "SHA1", 8, 30, 59), "94287082");
        assert_eq!(
            oathtool_totp_at(secret, "sha1", 8, 30, 1_111_111_109),
            "07081804"
        );
        assert_eq!(oathtool_totp_at(secret, "SHA1", 6, 30, 59), "287082");
    }

    #[test]
    fn offsets_are_whole_steps() {
        let secret = "JBSWY3DPEHPK3PXP";
        wait_for_fresh_step(30, 5);
        let t = now_unix();
        assert_eq!(
            oathtool_totp(secret, "SHA1", 6, 30, 0),
            oathtool_totp_at(secret, "SHA1", 6, 30, t)
        );
        assert_eq!(
            oathtool_totp(secret, "SHA1", 6, 30, 1),
            oathtool_totp_at(secret, "SHA1", 6, 30, t + 30)
        );
        assert_eq!(
            oathtool_totp(secret, "SHA1", 6, 30, -1),
            oathtool_totp_at(secret, "SHA1", 6, 30, t - 30)
        );
        assert_eq!(oathtool_totp(secret, "SHA256", 8, 60, 0).len(), 8);
    }

    #[test]
    fn secret_is_read_from_the_uri() {
        let uri =
            "otpauth://totp/mfad-test:alice?secret=JBSWY3DPEHPK3PXP&issuer=mfad-test&digits=6";
        assert_eq!(secret_from_uri(uri), "JBSWY3DPEHPK3PXP");
        assert_eq!(
            secret_from_uri("otpauth://totp/x?issuer=a&secret=ABC%3D%3D"),
            "ABC=="
        );
    }
}
