//! Destinations: checked and normalised when they are set, and masked
//! wherever a person sees them (`+44*******123`, `y***@example.com`).

use mfad_protocol::Channel;

/// E.164: `+`, a country code not starting with 0, 8 to 15 digits in all.
/// Spaces, dashes, dots and parentheses are dropped first.
pub fn phone(input: &str) -> Result<String, String> {
    let compact: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let Some(digits) = compact.strip_prefix('+') else {
        return Err(
            "a phone number must be in international form, starting with + and the country code (+447700900123)"
                .to_owned(),
        );
    };
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || !(8..=15).contains(&digits.len())
        || digits.starts_with('0')
    {
        return Err(
            "a phone number is + and 8 to 15 digits, the first not 0 (E.164, e.g. +447700900123)"
                .to_owned(),
        );
    }
    Ok(compact)
}

/// One address as RFC 5322 allows it (checked by lettre), without a
/// display name, bounded in length.
pub fn email(input: &str) -> Result<String, String> {
    let input = input.trim();
    if input.len() > 254 || input.chars().any(char::is_control) {
        return Err(
            "an email address has at most 254 characters and no control characters".to_owned(),
        );
    }
    input
        .parse::<lettre::Address>()
        .map(|a| a.to_string())
        .map_err(|e| format!("{input:?} is not an email address ({e})"))
}

/// Checks and normalises a destination for `channel`.
pub fn parse(channel: Channel, input: &str) -> Result<String, String> {
    match channel {
        Channel::Sms => phone(input),
        Channel::Email => email(input),
    }
}

/// The destination as users and admins see it: the country code and the
/// last three digits of a number; the first letter and the domain of an
/// address.
pub fn mask(channel: Channel, address: &str) -> String {
    match channel {
        Channel::Sms => {
            let digits: Vec<char> = address.trim_start_matches('+').chars().collect();
            let keep_head = 2.min(digits.len());
            let keep_tail = 3.min(digits.len() - keep_head);
            let hidden = digits.len() - keep_head - keep_tail;
            let head: String = digits[..keep_head].iter().collect();
            let tail: String = digits[digits.len() - keep_tail..].iter().collect();
            format!("+{head}{}{tail}", "*".repeat(hidden))
        }
        Channel::Email => match address.rsplit_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised_to_e164() {
        assert_eq!(phone("+44 7700 900123").unwrap(), "+447700900123");
        assert_eq!(phone("+1 (555) 010-9999").unwrap(), "+15550109999");
        for bad in [
            "07700900123",
            "+0447700900123",
            "+44",
            "+44770090012345678",
            "+44abc1234567",
            "",
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(email(" yvonne@example.com ").unwrap(), "yvonne@example.com");
        for bad in [
            "yvonne",
            "a@",
            "@example.com",
            "a b@example.com",
            "a@example.com\r\nBcc: x@y",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masks_match_the_documented_form() {
        assert_eq!(mask(Channel::Sms, "+447700900123"), "+44*******123");
        assert_eq!(
            mask(Channel::Email, "yvonne@example.com"),
            "y***@example.com"
        );
        assert_eq!(mask(Channel::Sms, "+12"), "+12");
    }
}
