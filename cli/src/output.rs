//! Text for people (aligned tables, cleaned strings) versus `--json`.

use crate::error::CliError;
use serde::Serialize;

/// How results are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text meant for people.
    Human,
    /// One JSON document, for scripts.
    Json,
}

/// One pretty-printed JSON document followed by a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, CliError> {
    let mut text = serde_json::to_string_pretty(value).map_err(CliError::Json)?;
    text.push('\n');
    Ok(text)
}

/// Makes text from the daemon safe for a terminal: user names, hosts and
/// ttys can come from whoever started a login, so every control character
/// (escape sequences included) becomes `?`. Newlines are kept.
pub fn clean_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

/// Like [`clean_text`], for one table cell or one line: no newline either.
pub fn clean_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A value that may be missing, shown as `-`.
pub fn or_dash(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_owned(), clean_line)
}

/// Columns aligned with two spaces between them, a header line first, and
/// no trailing blanks. Every cell is cleaned of control characters.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| clean_line(c)).collect());
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate().take(columns) {
                let cell = row.get(i).map_or("", String::as_str);
                if i + 1 < columns {
                    line.push_str(&format!("{cell:<width$}  "));
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_without_trailing_blanks() {
        let mut t = Table::new(&["USER", "TOTP", "LOCKED"]);
        t.row(vec!["alice".into(), "enrolled".into(), "no".into()]);
        t.row(vec!["bob".into(), "-".into(), "".into()]);
        assert_eq!(
            t.render(),
            "USER   TOTP      LOCKED\n\
             alice  enrolled  no\n\
             bob    -\n"
        );
    }

    #[test]
    fn table_counts_characters_not_bytes() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["é".into(), "x".into()]);
        t.row(vec!["ab".into(), "y".into()]);
        assert_eq!(t.render(), "A   B\né   x\nab  y\n");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean_line("ev\u{1b}[2Jil\nx\t"), "ev?[2Jil?x?");
        assert_eq!(clean_text("a\nb\u{7}\r"), "a\nb??");
        let mut t = Table::new(&["RHOST"]);
        t.row(vec!["\u{1b}]0;pwned\u{7}".into()]);
        assert!(!t.render().contains('\u{1b}'));
        assert_eq!(or_dash(None), "-");
        assert_eq!(or_dash(Some("tty\u{1b}1")), "tty?1");
    }

    #[test]
    fn json_is_one_document_with_a_newline() {
        let text = json(&serde_json::json!({"a": [1, 2]})).unwrap();
        assert!(text.ends_with("}\n"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["a"][1], 2);
    }
}
