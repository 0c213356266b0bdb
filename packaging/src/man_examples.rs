//! The examples in the hand-written mfad.toml(5) go through the daemon's own
//! parsers: a page that shows an invalid file is a defect.

use mfad::config::Config;
use mfad::policy::{Nss, Policy};
use std::path::Path;

/// The text of each `.nf` ... `.fi` block of a roff page, unescaped.
fn blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match (line, current.as_mut()) {
            (".nf", None) => current = Some(String::new()),
            (".fi", Some(_)) => blocks.extend(current.take()),
            (".RS" | ".RE", Some(_)) => {}
            (_, Some(text)) => {
                text.push_str(&unescape(line));
                text.push('\n');
            }
            (_, None) => {}
        }
    }
    blocks
}

fn unescape(line: &str) -> String {
    let text = line
        .replace("\\-", "-")
        .replace("\\(aq", "'")
        .replace("\\(dq", "\"")
        .replace("\\&", "");
    assert!(
        !text.contains('\\'),
        "an escape this test does not know: {line}"
    );
    text
}

#[test]
fn mfad_toml_examples_pass_the_daemons_checks() {
    let page = include_str!("../man/mfad.toml.5");
    let (mut policies, mut configs) = (0, 0);
    for block in blocks(page) {
        if block.starts_with("[Service]") {
            // A systemd drop-in, not ours to parse.
        } else if block.contains("[[rule]]") {
            let (_, warnings) = Policy::from_text(&block, &Nss).unwrap_or_else(|d| {
                panic!(
                    "{block}\n=> {}",
                    d.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            });
            let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
            assert!(warnings.is_empty(), "{block}\n=> {warnings:?}");
            policies += 1;
        } else {
            // A part of a file ([sms] alone) is checked as a whole file.
            let text = match block.starts_with("version = ") {
                true => block.clone(),
                false => format!("version = 1\n{block}"),
            };
            if let Err(e) = Config::parse(Path::new("mfad.toml(5)"), &text) {
                panic!("{text}\n=> {e}");
            }
            configs += 1;
        }
    }
    assert!(
        policies >= 1 && configs >= 2,
        "{policies} policies, {configs} configs"
    );
}

#[test]
fn a_wrong_example_is_caught() {
    let page = ".nf\n.RS\n[[rule]]\nname = \"x\"\nall = true\nrequire = \"sms\\-code\"\n.RE\n.fi\n";
    let blocks = blocks(page);
    assert_eq!(blocks.len(), 1);
    assert!(Policy::from_text(&blocks[0], &Nss).is_err());
}
