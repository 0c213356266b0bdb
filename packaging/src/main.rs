//! Renders the man pages and shell completions of mfad and mfactl from the
//! clap definitions the programs parse (`mfad::args::command`,
//! `mfactl::command`), so `--help`, the man pages and the completions can
//! never disagree. The deb and rpm builds run it:
//!
//!   mfad-packaging OUTDIR DATE   writes OUTDIR/man/*.{1,8} (dated DATE,
//!                                YYYY-MM-DD) and OUTDIR/completions/
//!
//! mfad.toml(5) and pam_mfa(8) describe no command line and are written by
//! hand (`packaging/man/`).

#[cfg(test)]
mod man_examples;
mod roff;

use clap_complete::Shell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The hand-written pages, named in every SEE ALSO.
const RELATED: [&str; 4] = ["mfad(8)", "mfactl(1)", "mfad.toml(5)", "pam_mfa(8)"];

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), Some(date), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: mfad-packaging OUTDIR DATE (YYYY-MM-DD, for the pages' headers)");
        return ExitCode::from(2);
    };
    let Some(date) = date.to_str().filter(|d| is_date(d)) else {
        eprintln!(
            "mfad-packaging: {} is not a date of the form YYYY-MM-DD",
            date.display()
        );
        return ExitCode::from(2);
    };
    match generate(Path::new(&out), date) {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mfad-packaging: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every page and completion file; returns their paths.
fn generate(out: &Path, date: &str) -> std::io::Result<Vec<PathBuf>> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut files = Vec::new();
    for (cmd, section) in [(mfad::args::command(), "8"), (mfactl::command(), "1")] {
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        roff::pages(&cmd, section, date, &RELATED, &man, &mut files)?;
        let name = cmd.get_name().to_owned();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            files.push(clap_complete::generate_to(
                shell,
                &mut cmd,
                &name,
                &completions,
            )?);
        }
    }
    Ok(files)
}

fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_iso() {
        assert!(super::is_date("2026-01-31"));
        assert!(!super::is_date("2026-1-31"));
        assert!(!super::is_date("31.01.2026"));
    }
}
