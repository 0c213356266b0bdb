//! Message templates: `{name}` placeholders replaced by values, each value
//! escaped for where it lands (a form field, a JSON string, plain text).
//! Other braces (a JSON body's own) are left alone.

/// The `{name}` placeholders in `text`, in order: a name is one or more of
/// a-z and `_` between braces.
fn placeholders(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.match_indices('{').filter_map(move |(at, _)| {
        let rest = &text[at + 1..];
        let end = rest.find('}')?;
        let name = &rest[..end];
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .then_some((at, name))
    })
}

/// Checks that every placeholder in `text` is one of `known`, and that
/// those in `required` appear. The error says which and lists the known ones.
pub fn check(text: &str, known: &[&str], required: &[&str]) -> Result<(), String> {
    for (_, name) in placeholders(text) {
        if !known.contains(&name) {
            return Err(format!(
                "has an unknown placeholder {{{name}}} (known: {})",
                list(known)
            ));
        }
    }
    for name in required {
        if !placeholders(text).any(|(_, n)| n == *name) {
            return Err(format!("must contain {{{name}}}"));
        }
    }
    Ok(())
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Replaces each placeholder by its value passed through `escape`;
/// placeholders without a value are kept as written.
pub fn render(text: &str, values: &[(&str, &str)], escape: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut copied = 0;
    for (at, name) in placeholders(text) {
        let Some((_, value)) = values.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        out.push_str(&text[copied..at]);
        out.push_str(&escape(value));
        copied = at + name.len() + 2;
    }
    out.push_str(&text[copied..]);
    out
}

/// For plain text and form fields (the form encoder escapes later).
pub fn verbatim(value: &str) -> String {
    value.to_owned()
}

/// For the inside of a JSON string.
pub fn json_string(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_json_braces_kept() {
        let text = r#"{"to": "{to}", "text": "{message}", "n": {"x": 1}}"#;
        let out = render(
            text,
            &[("to", "+44"), ("message", "a \"b\"\n")],
            json_string,
        );
        assert_eq!(out, r#"{"to": "+44", "text": "a \"b\"\n", "n": {"x": 1}}"#);
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
        assert_eq!(render("{code} {code}", &[("code", "1")], verbatim), "1 1");
        assert_eq!(render("{other}", &[("code", "1")], verbatim), "{other}");
        assert_eq!(render("{", &[], verbatim), "{");
    }

    #[test]
    fn unknown_and_missing_placeholders_are_named() {
        assert!(check("Code {code}", &["code"], &["code"]).is_ok());
        let err = check("Code {cod}", &["code", "minutes"], &[]).unwrap_err();
        assert!(err.contains("{cod}") && err.contains("{minutes}"), "{err}");
        assert!(
            check("no code", &["code"], &["code"])
                .unwrap_err()
                .contains("{code}")
        );
        assert!(check(r#"{"a": 1}"#, &[], &[]).is_ok());
    }
}
