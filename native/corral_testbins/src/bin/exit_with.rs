//! `exit_with <code>` exits with that code; `exit_with signal <SIG>` kills
//! itself with that signal (`SIGKILL`, `KILL` or a number).

use nix::sys::signal::{kill, signal, SigHandler, Signal};

fn parse_signal(s: &str) -> Option<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let name = if s.starts_with("SIG") {
        s.to_owned()
    } else {
        format!("SIG{s}")
    };
    name.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["signal", sig] => {
            let Some(sig) = parse_signal(sig) else {
                corral_testbins::usage("exit_with signal <SIG>")
            };
            if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
                // SAFETY: SIG_DFL installs no handler.
                unsafe { signal(sig, SigHandler::SigDfl) }.expect("default disposition");
            }
            kill(nix::unistd::getpid(), sig).expect("kill self");
            // A signal whose default is to continue or be ignored lands here.
            std::process::exit(70)
        }
        [code] => match code.parse::<i32>() {
            Ok(c) => std::process::exit(c),
            Err(_) => corral_testbins::usage("exit_with <code> | exit_with signal <SIG>"),
        },
        _ => corral_testbins::usage("exit_with <code> | exit_with signal <SIG>"),
    }
}
