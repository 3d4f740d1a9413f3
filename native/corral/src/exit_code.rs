//! The helper's own exit statuses, apart from the child's.

/// People's `--timeout` ended the run, as `timeout(1)` exits. Port mode
/// exits with the child's status; the BEAM reads the reason in `X`.
pub const TIMEOUT: i32 = 124;
/// A command-line usage error, as `env(1)` and `timeout(1)` use it.
pub const USAGE_ERROR: i32 = 125;
/// An unsupported protocol version (`EX_USAGE`, `sysexits.h`).
pub const USAGE: i32 = 64;
/// The BEAM sent something that is not the protocol (`EX_DATAERR`).
pub const PROTOCOL: i32 = 65;
/// The helper itself failed: epoll, pipes (`EX_SOFTWARE`).
pub const INTERNAL: i32 = 70;
/// The command exists but could not be executed, as `env(1)` and shells use it.
pub const CANNOT_EXECUTE: i32 = 126;
/// The command was not found, as `env(1)` and shells use it.
pub const NOT_FOUND: i32 = 127;
