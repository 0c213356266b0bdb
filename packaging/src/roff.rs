//! One man page per command and subcommand: clap_mangen's title, name,
//! synopsis, description, options and subcommands, then the command's long
//! after-help split into sections of its own, then SEE ALSO.
//!
//! The after-help is written for `--help`, in paragraphs. A paragraph that
//! opens with a short label ("Files:", "Exit status: 0 when ...") starts a
//! section of that name; any other paragraph continues the section before
//! it, or the description when none came yet. An indented line
//! "  NAME   text" becomes a tagged paragraph.

use clap::Command;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes the page of `cmd` and of each visible subcommand into `dir`.
pub fn pages(
    cmd: &Command,
    section: &str,
    date: &str,
    related: &[&str],
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub, section, date, related, dir, files)?;
    }
    let man = Man::new(cmd.clone())
        .title(
            cmd.get_display_name()
                .unwrap_or(cmd.get_name())
                .to_uppercase(),
        )
        .section(section)
        .date(date)
        .source(source(cmd))
        .manual("mfad");
    let path = dir.join(man.get_filename());
    let mut file = io::BufWriter::new(std::fs::File::create(&path)?);
    render(&man, cmd, section, related, &mut file)?;
    file.flush()?;
    files.push(path);
    Ok(())
}

fn render(
    man: &Man,
    cmd: &Command,
    section: &str,
    related: &[&str],
    w: &mut dyn Write,
) -> io::Result<()> {
    let (lead, sections) = split_after_help(cmd);
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    let mut roff = Roff::default();
    for paragraph in &lead {
        roff.control("PP", []);
        paragraph_text(&mut roff, paragraph);
    }
    roff.to_writer(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    let mut roff = Roff::default();
    for (heading, paragraphs) in &sections {
        roff.control("SH", [heading.to_uppercase().as_str()]);
        for (i, paragraph) in paragraphs.iter().enumerate() {
            if i > 0 {
                roff.control("PP", []);
            }
            paragraph_text(&mut roff, paragraph);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    let own = format!(
        "{}({section})",
        cmd.get_display_name().unwrap_or(cmd.get_name())
    );
    let see: Vec<&str> = related.iter().copied().filter(|r| *r != own).collect();
    roff.text([roman(see.join(", "))]);
    roff.to_writer(w)
}

/// The footer's "mfactl 0.1.0": the program a subcommand belongs to
/// (clap_mangen would name the subcommand alone, "kill 0.1.0").
fn source(cmd: &Command) -> String {
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name());
    let program = name.split(' ').next().unwrap_or(name);
    format!("{program} {}", cmd.get_version().unwrap_or_default())
}

type Sections = Vec<(String, Vec<String>)>;

/// The paragraphs before the first labelled one, and the sections.
fn split_after_help(cmd: &Command) -> (Vec<String>, Sections) {
    let text = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut lead = Vec::new();
    let mut sections: Sections = Vec::new();
    for paragraph in text
        .split("\n\n")
        .map(str::trim_end)
        .filter(|p| !p.is_empty())
    {
        match label(paragraph) {
            Some((heading, rest)) => sections.push((heading.to_owned(), vec![rest.to_owned()])),
            None => match sections.last_mut() {
                Some((_, paragraphs)) => paragraphs.push(paragraph.to_owned()),
                None => lead.push(paragraph.to_owned()),
            },
        }
    }
    (lead, sections)
}

/// "Exit status: 0 on ..." gives ("Exit status", "0 on ..."): a label is
/// one to three words of letters, capitalised, ending in a colon.
fn label(paragraph: &str) -> Option<(&str, &str)> {
    let (head, rest) = paragraph.split_once(':')?;
    let words: Vec<&str> = head.split(' ').collect();
    let is_label = words.len() <= 3
        && head.starts_with(|c: char| c.is_ascii_uppercase())
        && words
            .iter()
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphabetic()));
    let rest = rest.strip_prefix(' ').or(rest.strip_prefix('\n'))?;
    is_label.then_some((head, rest))
}

/// Running text, with each "  NAME   text" line as a tagged paragraph.
fn paragraph_text(roff: &mut Roff, paragraph: &str) {
    let mut prose = Vec::new();
    for line in paragraph.lines() {
        let tagged = line
            .strip_prefix("  ")
            .and_then(|l| l.split_once("  "))
            .map(|(tag, text)| (tag.trim(), text.trim()));
        match tagged {
            Some((tag, text)) if !tag.is_empty() => {
                flush_prose(roff, &mut prose);
                roff.control("TP", []);
                roff.text([bold(tag)]);
                roff.text([roman(text)]);
            }
            _ => prose.push(line.trim()),
        }
    }
    flush_prose(roff, &mut prose);
}

fn flush_prose(roff: &mut Roff, prose: &mut Vec<&str>) {
    if !prose.is_empty() {
        roff.text([roman(prose.join(" "))]);
        prose.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_capitalised_words() {
        assert_eq!(
            label("Exit status: 0 on success"),
            Some(("Exit status", "0 on success"))
        );
        assert_eq!(label("Files:\n  /etc/x  y"), Some(("Files", "  /etc/x  y")));
        assert_eq!(label("With --json: {\"file\"}"), None);
        assert_eq!(label("Each problem is printed as FILE:LINE: x"), None);
        assert_eq!(label("users: lower case"), None);
    }

    #[test]
    fn unlabelled_paragraphs_continue_the_section_before_them() {
        let cmd = Command::new("x").after_long_help(
            "Lead paragraph.\n\nFiles:\n  /a  the a file\n\nMore about files.\n\nExit status: 0.",
        );
        let (lead, sections) = split_after_help(&cmd);
        assert_eq!(lead, ["Lead paragraph."]);
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].0, "Files");
        assert_eq!(sections[0].1, ["  /a  the a file", "More about files."]);
        assert_eq!(
            sections[1],
            ("Exit status".to_owned(), vec!["0.".to_owned()])
        );
    }

    #[test]
    fn subcommand_pages_name_their_program_in_the_footer() {
        let mut cmd = Command::new("tool")
            .version("1.2")
            .propagate_version(true)
            .subcommand(Command::new("kill"));
        cmd.build();
        let kill = cmd.find_subcommand("kill").unwrap();
        assert_eq!(source(kill), "tool 1.2");
        assert_eq!(source(&cmd), "tool 1.2");
    }

    #[test]
    fn every_page_renders_with_its_sections() {
        let dir = std::env::temp_dir().join(format!("mfad-packaging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = mfad::args::command();
        cmd.build();
        let mut files = Vec::new();
        pages(
            &cmd,
            "8",
            "2026-01-31",
            &["mfad(8)", "pam_mfa(8)"],
            &dir,
            &mut files,
        )
        .unwrap();
        let page = std::fs::read_to_string(dir.join("mfad.8")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(files.len(), 1);
        let title = format!(
            ".TH MFAD 8 2026-01-31 \"mfad {}\" mfad",
            env!("CARGO_PKG_VERSION")
        );
        for part in [
            title.as_str(),
            ".SH FILES",
            ".SH SIGNALS",
            ".SH \"EXIT STATUS\"",
            "\\-\\-init",
        ] {
            assert!(page.contains(part), "{part} missing from\n{page}");
        }
        assert!(
            page.contains("pam_mfa(8)") && !page.contains("mfad(8),"),
            "{page}"
        );
    }
}
