//! `raw_client SOCKET JSON...`: a raw protocol peer for tests that need one
//! running as another uid (through `setpriv`).
//!
//! For each JSON argument it sends one frame (4-byte big-endian length, then
//! the argument's bytes, unchanged) and prints the body of the one response
//! frame on its own line. When the daemon closes the connection it prints
//! `CLOSED`; other failures print `ERROR <why>` and exit with status 2. It
//! does no peer-uid check: tests point it at their own daemon.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

fn read_response(stream: &mut UnixStream) -> io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 4];
    match stream.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > mfad_protocol::MAX_FRAME {
        return Err(io::Error::other(format!("response frame of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(Some(body))
}

fn run(socket: &str, frames: &[String]) -> io::Result<()> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = io::stdout().lock();
    for body in frames {
        let len = u32::try_from(body.len()).map_err(io::Error::other)?;
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(body.as_bytes());
        stream.write_all(&frame)?;
        match read_response(&mut stream)? {
            Some(resp) => {
                out.write_all(&resp)?;
                out.write_all(b"\n")?;
            }
            None => {
                writeln!(out, "CLOSED")?;
                return Ok(());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((socket, frames)) = args.split_first() else {
        eprintln!("usage: raw_client SOCKET JSON...");
        return ExitCode::from(2);
    };
    match run(socket, frames) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("ERROR {e}");
            ExitCode::from(2)
        }
    }
}
