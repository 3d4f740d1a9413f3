//! A helper started before its command is known: the BEAM keeps a few
//! waiting so a spawn does not pay for the helper's own `execve`.
//!
//! Such a helper (`--port --protocol N --pooled`) sends nothing and does
//! nothing until an `R` frame brings the rest of its command line; if the
//! port closes first it exits quietly.

use crate::args::Args;
use crate::exit_code;
use clap::Parser;
use corral_proto::{Down, HEADER, MAX_FRAME};
use nix::errno::Errno;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Reads exactly `buf.len()` bytes from stdin; false at EOF or on error.
fn read_exact(buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(0, &mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Waits for the `R` frame and returns the whole command line it
/// completes, or `None` when the port closed first.
///
/// Reads byte-exactly, frame by frame: whatever the BEAM sends after `R`
/// (stdin data, acks) must stay in the pipe for the session.
pub fn await_command(pooled: &Args) -> Option<Args> {
    let mut header = [0u8; HEADER];
    if !read_exact(&mut header) {
        return None;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 || len > MAX_FRAME {
        eprintln!("corral: a pooled helper got a frame of {len} bytes");
        std::process::exit(exit_code::PROTOCOL);
    }
    let mut body = vec![0u8; len];
    if !read_exact(&mut body) {
        return None;
    }
    let Ok(Down::Run(rest)) = Down::decode(&body) else {
        eprintln!("corral: a pooled helper must get R first");
        std::process::exit(exit_code::PROTOCOL);
    };
    let protocol = pooled.protocol.unwrap_or_default().to_string();
    let argv = ["corral", "--port", "--protocol", &protocol]
        .into_iter()
        .map(OsString::from)
        .chain(rest.into_iter().map(OsString::from_vec));
    match Args::try_parse_from(argv) {
        Ok(args) => Some(args),
        Err(e) => {
            let _ = e.print();
            std::process::exit(exit_code::USAGE_ERROR);
        }
    }
}
