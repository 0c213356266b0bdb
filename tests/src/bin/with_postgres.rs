//! `with_postgres COMMAND [ARGS...]`: starts a PostgreSQL cluster of its own
//! (as the fleet tests do: initdb in a temporary directory, a loopback
//! port), runs COMMAND with `MFAD_TEST_POSTGRES` naming it, and stops and
//! removes the cluster afterwards. scripts/test runs the end-to-end tests
//! under it a second time, so every test daemon keeps its state in a
//! PostgreSQL database of its own instead of a SQLite file.

#![allow(clippy::expect_used)] // a test tool: a failure to start is fatal

use mfad_tests::postgres::{Postgres, SHARED_ENV};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: with_postgres COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let pg = Postgres::start();
    let status = Command::new(&program)
        .args(args)
        .env(SHARED_ENV, pg.shared().to_env())
        .status();
    drop(pg);
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("with_postgres: {program} exited with {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("with_postgres: cannot run {program}: {e}");
            ExitCode::FAILURE
        }
    }
}
