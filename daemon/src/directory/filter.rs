//! Search filters with user-supplied values (RFC 4515). Every value is
//! escaped byte by byte, so a user name holding `*`, `(`, `)`, `\` or NUL
//! is matched literally and can never widen, close or extend the search.

/// The RFC 4515 form of an assertion value: the special bytes, and every
/// byte outside printable ASCII, as `\XX`.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'*' | b'(' | b')' | b'\\' | 0 => out.push_str(&format!("\\{b:02x}")),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:02x}")),
        }
    }
    out
}

/// The configured `user_filter` with `{user}` replaced by the escaped name.
pub fn user(template: &str, user: &str) -> String {
    template.replace("{user}", &escape(user))
}

/// posixGroup entries listing `user` in memberUid.
pub fn posix_groups(user: &str) -> String {
    format!("(&(objectClass=posixGroup)(memberUid={}))", escape(user))
}

/// AD groups holding `dn` directly or through other groups: the
/// LDAP_MATCHING_RULE_IN_CHAIN extensible match.
pub fn nested_groups(dn: &str) -> String {
    format!(
        "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={}))",
        escape(dn)
    )
}

/// A group named `name`, of any of the usual group classes.
pub fn group(name: &str) -> String {
    format!(
        "(&(|(objectClass=posixGroup)(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)\
         (objectClass=group))(cn={}))",
        escape(name)
    )
}

/// The value of a DN's first RDN, unescaped: `ops` for
/// `cn=ops,ou=groups,dc=example,dc=org` (the name `%ops` matches).
pub fn first_rdn_value(dn: &str) -> Option<String> {
    let (_, rest) = dn.split_once('=')?;
    let mut out = Vec::new();
    let mut bytes = rest.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b',' | b'+' => break,
            b'\\' => {
                let next = bytes.next()?;
                if next.is_ascii_hexdigit() {
                    let low = bytes.next()?;
                    let hex = [next, low];
                    let hex = std::str::from_utf8(&hex).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                } else {
                    out.push(next);
                }
            }
            _ => out.push(b),
        }
    }
    let value = String::from_utf8(out).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn specials_are_escaped() {
        assert_eq!(escape("alice"), "alice");
        assert_eq!(escape("*"), "\\2a");
        assert_eq!(escape("a)(uid=*"), "a\\29\\28uid=\\2a");
        assert_eq!(escape("back\\slash"), "back\\5cslash");
        assert_eq!(escape("nul\0"), "nul\\00");
        assert_eq!(escape("é"), "\\c3\\a9");
        assert_eq!(
            user("(sAMAccountName={user})", "*)(objectClass=*"),
            "(sAMAccountName=\\2a\\29\\28objectClass=\\2a)"
        );
    }

    proptest! {
        /// Whatever the name, the filter parses to one equality match whose
        /// value is exactly the name: it never changes the search.
        #[test]
        fn a_name_never_changes_the_search(name in "[a-z*()\\\\\\x00 é=&|!~<>]{0,12}") {
            let f = user("(uid={user})", &name);
            prop_assert!(ldap3::parse_filter(&f).is_ok(), "{}", f);
            let unescaped = ldap3::ldap_unescape(&f["(uid=".len()..f.len() - 1]).unwrap();
            prop_assert_eq!(unescaped.as_ref(), name.as_str());
            prop_assert!(!f[1..f.len() - 1].contains(['(', ')', '*']), "{}", f);
        }
    }

    #[test]
    fn group_filters_escape_their_values() {
        assert_eq!(
            posix_groups("a*"),
            "(&(objectClass=posixGroup)(memberUid=a\\2a))"
        );
        assert_eq!(
            nested_groups("CN=Smith\\, J (x),OU=Users,DC=corp"),
            "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=Smith\\5c, J \\28x\\29,OU=Users,DC=corp))"
        );
        assert!(ldap3::parse_filter(nested_groups("CN=a*,DC=b")).is_ok());
        assert!(ldap3::parse_filter(group("ops)(cn=*")).is_ok());
    }

    #[test]
    fn group_names_come_from_the_first_rdn() {
        assert_eq!(
            first_rdn_value("cn=ops,ou=groups,dc=example,dc=org").as_deref(),
            Some("ops")
        );
        assert_eq!(
            first_rdn_value("CN=Domain Admins,CN=Users,DC=corp").as_deref(),
            Some("Domain Admins")
        );
        assert_eq!(first_rdn_value("cn=a\\,b,dc=x").as_deref(), Some("a,b"));
        assert_eq!(
            first_rdn_value("cn=\\c3\\a9t\\c3\\a9,dc=x").as_deref(),
            Some("été")
        );
        assert_eq!(first_rdn_value("garbage"), None);
        assert_eq!(first_rdn_value("cn=,dc=x"), None);
    }
}
