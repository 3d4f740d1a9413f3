//! The command line: the launcher's options for people, under the
//! headings `--help` shows them in, and port mode's for the BEAM, hidden
//! from `--help` and described in `docs/helper.md`.
//!
//! An option for people takes `help_heading` from the constants below
//! ([`LIMITS`], [`ENVIRONMENT`], [`OUTPUT`], [`CGROUPS`]); one for the
//! BEAM only is `hide = true`. `--help`, the man page and the shell
//! completions (`native/corral_gen`, `make man`) all come from this file.

use crate::values::{boolish, duration, kill_signal, percent, size, term_size, TermSize};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Parser, ValueEnum};
use corral_cgroup::PIDS_MAX_LIMIT;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// `--help`'s heading for limits on the tree and the teardown.
pub const LIMITS: &str = "Limits";
/// `--help`'s heading for what the command starts with: variables,
/// directory, user.
pub const ENVIRONMENT: &str = "Environment";
/// `--help`'s heading for the command's streams and corral's report.
pub const OUTPUT: &str = "Output";
/// `--help`'s heading for where the cgroup goes and what it sets.
pub const CGROUPS: &str = "Cgroups";
/// `--help`'s heading for help and version.
pub const OTHER: &str = "Other";

/// Where one of the child's standard streams goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stdio {
    /// `/dev/null`.
    Null,
    /// A pipe the helper serves with the Corral protocol, for the BEAM
    /// (`docs/helper.md`); never for a terminal.
    #[value(hide = true)]
    Pipe,
    /// into stdout, as `2>&1`.
    Stdout,
    /// corral's own stream.
    Inherit,
}

/// What `--help` shows after the options: examples, then the exit
/// statuses. The man page has the same rows as its own sections.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "corral -m 50M -- python3",
        "interactive, OOM-killed past 50 MiB",
    ),
    (
        "corral -c 50% -t 10s -- make -j8",
        "half a core, ten seconds of wall time",
    ),
    (
        "corral --cpu-time 1s --json -- ./solver",
        "one JSON report on stderr",
    ),
    (
        "echo x | corral -q -- tr x y | cat",
        "in a pipeline: stdout is the command's alone",
    ),
    (
        "corral --capture-env yes -- env",
        "the command gets your whole environment",
    ),
];

/// The exit statuses, as `timeout(1)` and `env(1)` give them.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("N", "the command's own exit status"),
    (
        "128+N",
        "the command was killed by signal N: 137 (SIGKILL) after an OOM \
         kill, 143 (SIGTERM) when --cpu-time, --idle-timeout or \
         --max-processes ended it or corral was told to stop",
    ),
    ("124", "--timeout ended the run, as with timeout(1)"),
    (
        "125",
        "corral's usage error, or a limit the system cannot apply",
    ),
    ("126", "the command was found but cannot be executed"),
    ("127", "the command was not found"),
];

/// `--help`'s closing sections, from [`EXAMPLES`] and [`EXIT_STATUS`].
fn after_help() -> String {
    let mut out = String::from("EXAMPLES:\n");
    for (command, what) in EXAMPLES {
        out += &format!("  {command}\n");
        indented(&mut out, what, 10);
    }
    out += "\nEXIT STATUS:\n";
    for (code, what) in EXIT_STATUS {
        out += &format!("  {code:<7}");
        indented(&mut out, what, 10);
    }
    out
}

/// Appends `text` wrapped at 80 columns, each line after the first (and
/// the first too when `out` ends a line) indented by `indent`.
fn indented(out: &mut String, text: &str, indent: usize) {
    let mut column = out.len() - out.rfind('\n').map_or(0, |i| i + 1);
    for word in text.split(' ') {
        if column > indent && column + 1 + word.len() > 80 {
            out.push('\n');
            column = 0;
        }
        if column < indent {
            out.push_str(&" ".repeat(indent - column));
            column = indent;
        } else {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
    }
    out.push('\n');
}

/// A stream mode among `allowed`, with the help texts and the hidden
/// `pipe` of [`Stdio`].
fn stdio(allowed: &'static [Stdio]) -> impl clap::builder::TypedValueParser<Value = Stdio> {
    let values = allowed.iter().filter_map(ValueEnum::to_possible_value);
    PossibleValuesParser::new(values).try_map(|s| Stdio::from_str(&s, false))
}

/// What `--stdin` and `--stdout` take.
const IN_OR_OUT: &[Stdio] = &[Stdio::Inherit, Stdio::Null, Stdio::Pipe];
/// What `--stderr` takes: the same, and into stdout.
const ERR: &[Stdio] = &[Stdio::Inherit, Stdio::Null, Stdio::Stdout, Stdio::Pipe];

/// `corral` options. See `docs/helper.md` for port mode.
///
/// Every option whose value is a name, a path or text takes any value,
/// one that begins with `-` too (`--arg0 -sh`, `--cd -dir`, `--env -x=1`):
/// a value is never read as another option. The BEAM sends the
/// `--option=value` form, which no parser can misread.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "corral",
    version,
    about = "Run a program with its whole process tree contained and limited",
    long_about = "Run a program with its whole process tree contained and limited.\n\n\
        corral puts the command and everything it starts in a cgroup (or, \
        where it cannot make one, keeps them as a subreaper), applies the \
        limits to the whole tree, ends the whole tree when the command ends \
        or a limit is reached, and prints a summary on stderr. Nothing of \
        corral's own goes to stdout.",
    trailing_var_arg = true,
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = after_help()
)]
pub struct Args {
    // Limits.
    /// Memory limit of the whole tree: K, M, G (powers of 1024) or bytes.
    ///
    /// The cgroup's memory limit when there is one (the kernel's OOM
    /// killer then ends the run), else the polled sum of resident memory.
    #[arg(short = 'm', long = "memory-limit", alias = "memory", value_name = "SIZE", value_parser = size, help_heading = LIMITS)]
    pub memory: Option<u64>,

    /// CPU bandwidth limit; 100% is one core.
    #[arg(short = 'c', long = "cpu-limit", value_name = "PCT", value_parser = percent, help_heading = LIMITS)]
    pub cpu_limit: Option<u64>,

    /// Wall-time limit (exit status 124 when it ends the run).
    ///
    /// DURATION is a number with ms, s, m or h; a bare number is seconds.
    #[arg(short = 't', long, value_name = "DURATION", value_parser = duration, help_heading = LIMITS)]
    pub timeout: Option<Duration>,

    /// CPU-time limit of the whole tree, reaped processes included.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LIMITS)]
    pub cpu_time: Option<Duration>,

    /// Most processes alive in the tree at once.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=PIDS_MAX_LIMIT),
        help_heading = LIMITS
    )]
    pub max_processes: Option<u64>,

    /// End the tree after this long with no CPU progress and no output.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LIMITS)]
    pub idle_timeout: Option<Duration>,

    /// Time between SIGTERM and SIGKILL when the tree is ended.
    #[arg(long, alias = "delay-to-sigkill", value_name = "DURATION", default_value = "500ms", value_parser = duration, help_heading = LIMITS)]
    pub grace: Duration,

    /// The first signal sent when the tree is ended (INT, QUIT, HUP...);
    /// SIGKILL still follows after --grace.
    #[arg(long, value_name = "SIG", default_value = "TERM", value_parser = kill_signal, help_heading = LIMITS)]
    pub kill_signal: nix::sys::signal::Signal,

    /// Scheduling priority of the command, -20 (highest) to 19 (lowest);
    /// below the current value needs privilege (CAP_SYS_NICE).
    #[arg(long, value_name = "N", allow_hyphen_values = true,
          value_parser = clap::value_parser!(i32).range(-20..=19), help_heading = LIMITS)]
    pub nice: Option<i32>,

    // Environment.
    /// Pass your whole environment to the command [default: no].
    ///
    /// Without it, as with playpen, the command gets only HOME, USER,
    /// LOGNAME, SHELL, TERM, LANG, LC_ALL and TZ (and PATH, see
    /// --capture-path), plus --env. BOOL is yes/no, on/off, true/false or
    /// 1/0; the option alone means yes.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "yes", value_parser = boolish(), hide_possible_values = true, help_heading = ENVIRONMENT)]
    pub capture_env: Option<bool>,

    /// Pass PATH when the environment is not captured [default: yes].
    ///
    /// BOOL is yes/no, on/off, true/false or 1/0; the option alone means yes.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "yes", value_parser = boolish(), hide_possible_values = true, help_heading = ENVIRONMENT)]
    pub capture_path: Option<bool>,

    /// Set an environment variable (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", allow_hyphen_values = true, help_heading = ENVIRONMENT)]
    pub env: Vec<OsString>,

    /// Remove an environment variable (repeatable).
    #[arg(long = "unset", value_name = "KEY", allow_hyphen_values = true, help_heading = ENVIRONMENT)]
    pub unset: Vec<OsString>,

    /// Start the command with an empty environment (then --env).
    #[arg(long, help_heading = ENVIRONMENT)]
    pub clear_env: bool,

    /// The command's working directory.
    #[arg(long, value_name = "DIR", allow_hyphen_values = true, help_heading = ENVIRONMENT)]
    pub cd: Option<PathBuf>,

    /// The command's argv[0].
    #[arg(long, value_name = "NAME", allow_hyphen_values = true, help_heading = ENVIRONMENT)]
    pub arg0: Option<OsString>,

    /// Run as this user (name or number).
    #[arg(long, value_name = "USER", allow_hyphen_values = true, help_heading = ENVIRONMENT)]
    pub uid: Option<String>,

    /// Run with this group (name or number).
    #[arg(long, value_name = "GROUP", allow_hyphen_values = true, help_heading = ENVIRONMENT)]
    pub gid: Option<String>,

    /// A supplementary group (repeatable).
    #[arg(long = "group", value_name = "GROUP", allow_hyphen_values = true, help_heading = ENVIRONMENT)]
    pub groups: Vec<String>,

    // Output.
    /// Print no summary.
    #[arg(short, long, help_heading = OUTPUT)]
    pub quiet: bool,

    /// Print the report as one JSON object on stderr instead of the summary.
    #[arg(long, help_heading = OUTPUT)]
    pub json: bool,

    /// Write the JSON report to this file instead.
    #[arg(long, value_name = "FILE", allow_hyphen_values = true, help_heading = OUTPUT)]
    pub report: Option<PathBuf>,

    /// The command's stdin [default: inherit].
    #[arg(long, value_name = "MODE", value_parser = stdio(IN_OR_OUT), help_heading = OUTPUT)]
    pub stdin: Option<Stdio>,

    /// The command's stdout [default: inherit].
    #[arg(long, value_name = "MODE", value_parser = stdio(IN_OR_OUT), help_heading = OUTPUT)]
    pub stdout: Option<Stdio>,

    /// Run the command on a pseudo-terminal of its own, COLSxROWS (80x24
    /// without a size): stdin, stdout and stderr are the terminal.
    #[arg(long, value_name = "COLSxROWS", num_args = 0..=1, require_equals = true,
          default_missing_value = "80x24", value_parser = term_size, help_heading = OUTPUT)]
    pub pty: Option<TermSize>,

    /// The command's stderr [default: inherit].
    #[arg(long, value_name = "MODE", value_parser = stdio(ERR), help_heading = OUTPUT)]
    pub stderr: Option<Stdio>,

    // Cgroups.
    /// Run in exactly this cgroup (relative to each hierarchy's root).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "cgroup_base",
        allow_hyphen_values = true,
        help_heading = CGROUPS
    )]
    pub cgroup_path: Option<String>,

    /// Run in a fresh cgroup under this one (relative to each hierarchy's
    /// root) [default: under corral's own].
    #[arg(long, value_name = "PATH", allow_hyphen_values = true, help_heading = CGROUPS)]
    pub cgroup_base: Option<String>,

    /// Do not use cgroups at all: subreaper containment only.
    #[arg(long, conflicts_with_all = ["cgroup_path", "cgroup_base"], help_heading = CGROUPS)]
    pub no_cgroup: bool,

    /// A typed cgroup limit, MuonTrap 2's keys: `memory_max=67108864`,
    /// `cpu_max=50000 100000`, `pids_max=20` (repeatable).
    #[arg(
        long = "cgroup-set",
        value_name = "KEY=VALUE",
        allow_hyphen_values = true,
        help_heading = CGROUPS
    )]
    pub cgroup_sets: Vec<String>,

    /// A v1 controller to join, as MuonTrap 1's `cgroup_controllers` (repeatable).
    #[arg(
        long = "cgroup-controller",
        value_name = "NAME",
        allow_hyphen_values = true,
        help_heading = CGROUPS
    )]
    pub cgroup_controllers: Vec<String>,

    /// A raw write, as MuonTrap 1's `cgroup_sets`:
    /// `memory:memory.limit_in_bytes=268435456` (repeatable).
    #[arg(
        long = "cgroup-raw",
        value_name = "CONTROLLER:FILE=VALUE",
        allow_hyphen_values = true,
        help_heading = CGROUPS
    )]
    pub cgroup_raw: Vec<String>,

    // Other.
    /// Print help (--help for more).
    #[arg(short = 'h', long, action = ArgAction::Help, help_heading = OTHER)]
    help: Option<bool>,

    /// Print the version.
    #[arg(short = 'V', long, action = ArgAction::Version, help_heading = OTHER)]
    version: Option<bool>,

    // Port mode, for the BEAM only (docs/helper.md).
    /// Speak the Corral protocol on stdin/stdout (used by the BEAM).
    #[arg(long, hide = true)]
    pub port: bool,

    /// Protocol version the BEAM speaks.
    #[arg(long, hide = true)]
    pub protocol: Option<u8>,

    /// Start before the command is known and take it from an `R` frame
    /// (a pre-started helper from the BEAM's pool).
    #[arg(long, hide = true, requires = "port")]
    pub pooled: bool,

    /// The BEAM can read the child's output pipes itself: when one holds
    /// more than a frame, tell it to (a `P` frame) instead of relaying
    /// (docs/protocol.md, "Direct output").
    #[arg(long, hide = true, requires = "port")]
    pub direct_output: bool,

    /// Most unacknowledged output bytes in flight to the BEAM.
    /// At most `u32::MAX`, what one ack frame can give back.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = corral_proto::DEFAULT_WINDOW,
        hide = true,
        value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX))
    )]
    pub stdio_window: u64,

    /// The program and its arguments.
    #[arg(
        required_unless_present = "pooled",
        value_name = "COMMAND",
        value_hint = clap::ValueHint::CommandWithArguments
    )]
    pub command: Vec<OsString>,
}
