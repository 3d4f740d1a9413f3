//! The command line: port mode for the BEAM (`docs/helper.md`) and the
//! options shared with the launcher for people.

use clap::{Parser, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Where one of the child's standard streams goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stdio {
    /// `/dev/null`.
    Null,
    /// A pipe the helper serves: stdin from `I` frames, output to `O`/`E` frames.
    Pipe,
    /// stderr only: into the stdout pipe, as `2>&1`.
    Stdout,
    /// The helper's own stream.
    Inherit,
}

/// `corral` options. See `docs/helper.md` for port mode.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "corral",
    version,
    about = "Run a program with its whole process tree contained and limited",
    trailing_var_arg = true
)]
pub struct Args {
    /// Speak the Corral protocol on stdin/stdout (used by the BEAM).
    #[arg(long, hide = true)]
    pub port: bool,

    /// Protocol version the BEAM speaks.
    #[arg(long, hide = true)]
    pub protocol: Option<u8>,

    /// The child's working directory.
    #[arg(long, value_name = "DIR")]
    pub cd: Option<PathBuf>,

    /// Set an environment variable (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<OsString>,

    /// Remove an environment variable (repeatable).
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<OsString>,

    /// Start the child with an empty environment.
    #[arg(long)]
    pub clear_env: bool,

    /// The child's argv[0].
    #[arg(long, value_name = "NAME")]
    pub arg0: Option<OsString>,

    /// Run as this user (name or number).
    #[arg(long, value_name = "USER")]
    pub uid: Option<String>,

    /// Run with this group (name or number).
    #[arg(long, value_name = "GROUP")]
    pub gid: Option<String>,

    /// A supplementary group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,

    /// The child's stdin.
    #[arg(long, value_enum, value_name = "MODE")]
    pub stdin: Option<Stdio>,

    /// The child's stdout.
    #[arg(long, value_enum, value_name = "MODE")]
    pub stdout: Option<Stdio>,

    /// The child's stderr.
    #[arg(long, value_enum, value_name = "MODE")]
    pub stderr: Option<Stdio>,

    /// Most unacknowledged output bytes in flight to the BEAM.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub stdio_window: u64,

    /// Milliseconds between SIGTERM and SIGKILL when the tree is ended.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub delay_to_sigkill: u64,

    /// Wall-time limit in milliseconds.
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,

    /// Cumulative CPU-time limit of the whole tree, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub cpu_time: Option<u64>,

    /// Memory limit of the whole tree in bytes: the cgroup's when there is
    /// one, else the polled sum of resident memory.
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<u64>,

    /// Most processes alive in the tree at once.
    #[arg(long, value_name = "N")]
    pub max_processes: Option<u64>,

    /// End the tree after this many milliseconds with no CPU progress and no output.
    #[arg(long, value_name = "MS")]
    pub idle_timeout: Option<u64>,

    /// Run in exactly this cgroup (relative to each hierarchy's root).
    #[arg(long, value_name = "PATH", conflicts_with = "cgroup_base")]
    pub cgroup_path: Option<String>,

    /// Run in a fresh cgroup under this one (relative to each hierarchy's root).
    #[arg(long, value_name = "PATH")]
    pub cgroup_base: Option<String>,

    /// Do not use cgroups at all: subreaper containment only.
    #[arg(long, conflicts_with_all = ["cgroup_path", "cgroup_base"])]
    pub no_cgroup: bool,

    /// A typed cgroup limit, MuonTrap 2's keys: `memory_max=67108864`,
    /// `cpu_max=50000 100000`, `pids_max=20` (repeatable).
    #[arg(long = "cgroup-set", value_name = "KEY=VALUE")]
    pub cgroup_sets: Vec<String>,

    /// A v1 controller to join, as MuonTrap 1's `cgroup_controllers` (repeatable).
    #[arg(long = "cgroup-controller", value_name = "NAME")]
    pub cgroup_controllers: Vec<String>,

    /// A raw write, as MuonTrap 1's `cgroup_sets`:
    /// `memory:memory.limit_in_bytes=268435456` (repeatable).
    #[arg(long = "cgroup-raw", value_name = "CONTROLLER:FILE=VALUE")]
    pub cgroup_raw: Vec<String>,

    /// The program and its arguments.
    #[arg(required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl Args {
    /// The grace period between SIGTERM and SIGKILL.
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.delay_to_sigkill)
    }
}
