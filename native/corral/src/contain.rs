//! Choosing the child's cgroup from the command line, or none.

use crate::args::Args;
use corral_cgroup::{Group, Limits, Placement, RawSet, System};

/// Why containment could not be set up as asked.
#[derive(Debug)]
pub struct Error {
    /// The OS error behind it, when there is one.
    pub errno: i32,
    /// For people: what was asked and what to do about it.
    pub message: String,
}

fn invalid(message: String) -> Error {
    Error {
        errno: libc::EINVAL,
        message,
    }
}

/// The typed limits and raw writes asked for.
fn requested(args: &Args) -> Result<(Limits, Vec<RawSet>), Error> {
    let mut limits = Limits::default();
    for kv in &args.cgroup_sets {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| invalid(format!("--cgroup-set {kv:?}: expected KEY=VALUE")))?;
        limits.set_str(k, v).map_err(|e| invalid(e.to_string()))?;
    }
    let mut raw = Vec::new();
    for spec in &args.cgroup_raw {
        let parsed = spec
            .split_once(':')
            .and_then(|(c, rest)| rest.split_once('=').map(|(f, v)| (c, f, v)));
        let Some((controller, file, value)) = parsed else {
            return Err(invalid(format!(
                "--cgroup-raw {spec:?}: expected CONTROLLER:FILE=VALUE"
            )));
        };
        raw.push(RawSet {
            controller: controller.into(),
            file: file.into(),
            value: value.into(),
        });
    }
    Ok((limits, raw))
}

/// The cgroup for this run, or `None` when the system offers none and
/// nothing was asked that needs one.
///
/// # Errors
/// Bad limit syntax, or a cgroup that was asked for (a path, a base, a
/// limit) and cannot be had.
pub fn group(args: &Args) -> Result<Option<Group>, Error> {
    let (limits, raw) = requested(args)?;
    let needs_cgroup = !limits.is_empty()
        || !raw.is_empty()
        || !args.cgroup_controllers.is_empty()
        || args.cgroup_path.is_some()
        || args.cgroup_base.is_some();
    if args.no_cgroup {
        return if needs_cgroup {
            Err(invalid(
                "--no-cgroup conflicts with the cgroup options given".into(),
            ))
        } else {
            Ok(None)
        };
    }
    let placement = match (&args.cgroup_path, &args.cgroup_base) {
        (Some(p), _) => Placement::Path(p.clone()),
        (None, Some(b)) => Placement::Base(b.clone()),
        (None, None) => Placement::Default,
    };
    let created = System::detect()
        .and_then(|sys| Group::create(&sys, &placement, &limits, &args.cgroup_controllers, &raw));
    match created {
        Ok(g) => Ok(Some(g)),
        Err(e) if e.is_unavailable() && !needs_cgroup => Ok(None),
        Err(e) => Err(Error {
            errno: e.errno().unwrap_or(libc::EINVAL),
            message: e.to_string(),
        }),
    }
}
