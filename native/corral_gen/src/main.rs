//! `corral-gen DIR` writes corral's man page and shell completions from
//! the helper's own clap definition; `corral-gen --check DIR` says which of
//! them differ from what it would write. `make man` runs the first,
//! `make check` the second.
//!
//! # Files
//! - `DIR/man/corral.1`: the man page (`man -l docs/man/corral.1`);
//! - `DIR/completions/corral.bash`, `_corral` (zsh), `corral.fish`.
//!
//! The options come from `native/corral/src/args.rs` itself (and
//! `values.rs`, the grammar it uses), compiled in here by path: the one
//! definition, without the helper binary growing the generators.

// The helper uses all of args.rs and values.rs; the generator only needs
// the `Command`.
#[allow(dead_code)]
#[path = "../../corral/src/args.rs"]
mod args;
#[allow(dead_code)]
#[path = "../../corral/src/values.rs"]
mod values;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Every generated file: its path under DIR, and its bytes.
pub fn files() -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = vec![(PathBuf::from("man/corral.1"), man()?)];
    for (shell, name) in [
        (Shell::Bash, "corral.bash"),
        (Shell::Zsh, "_corral"),
        (Shell::Fish, "corral.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut for_people(), "corral", &mut out);
        files.push((Path::new("completions").join(name), out));
    }
    Ok(files)
}

/// corral's `Command` without the BEAM's hidden options, which
/// clap_complete would otherwise offer (it completes hidden arguments).
fn for_people() -> clap::Command {
    let full = args::Args::command();
    let visible =
        full.get_arguments()
            .filter(|a| !a.is_hide_set())
            .map(|a| match a.get_id().as_str() {
                // The same positional, but required outright: its
                // `required_unless_present = "pooled"` names a hidden option.
                "command" => clap::Arg::new("command")
                    .value_name("COMMAND")
                    .num_args(1..)
                    .required(true)
                    .trailing_var_arg(true)
                    .value_hint(a.get_value_hint())
                    .help(a.get_help().cloned().unwrap_or_default()),
                _ => a.clone(),
            });
    // corral_gen shares the workspace's version with corral.
    let mut people = clap::Command::new("corral")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args(visible);
    if let Some(about) = full.get_about() {
        people = people.about(about.clone());
    }
    people
}

/// The man page: clap_mangen's sections for the options, then EXAMPLES
/// and EXIT STATUS from the tables `--help` shows.
fn man() -> std::io::Result<Vec<u8>> {
    let command = args::Args::command();
    let page = clap_mangen::Man::new(command);
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    let mut roff = Roff::new();
    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in args::EXAMPLES {
        roff.control("TP", []);
        roff.text([bold(*command)]);
        roff.text([roman(*what)]);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in args::EXIT_STATUS {
        roff.control("TP", []);
        roff.text([bold(*code)]);
        roff.text([roman(*what)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "timeout(1), systemd-run(1); for the BEAM's port mode, \
         docs/helper.md in Corral's sources.",
    )]);
    roff.to_writer(&mut out)?;
    page.render_version_section(&mut out)?;
    Ok(out)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (check, dir) = match argv.as_slice() {
        [dir] => (false, dir),
        [flag, dir] if flag == "--check" => (true, dir),
        _ => {
            eprintln!("usage: corral-gen [--check] DIR");
            return ExitCode::from(2);
        }
    };
    let files = match files() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("corral-gen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stale = false;
    for (path, bytes) in files {
        let path = Path::new(dir).join(path);
        if check {
            if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
                eprintln!("corral-gen: {} is stale; run `make man`", path.display());
                stale = true;
            }
            continue;
        }
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &bytes));
        if let Err(e) = written {
            eprintln!("corral-gen: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if stale {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
