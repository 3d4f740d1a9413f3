//! NIFs about the system rather than one group: `cgroup_available` and
//! `cgroup_layout`.

use corral_cgroup::{Hierarchy, Layout, System};
use nix::unistd::{access, AccessFlags};
use rustler::{Encoder, Env, Term};

use crate::atoms;
use crate::encode::map;
use crate::error::Reason;

/// True for a v1 hierarchy with only a name (`name=systemd`) and no
/// controller, where groups are never made.
fn named_only(h: &Hierarchy) -> bool {
    h.controllers.iter().all(|c| c.starts_with("name="))
}

/// Whether a group could be created under the VM's own cgroup: detection
/// finds cgroupfs, and the own directory of the hierarchy every group needs
/// (the v2 tree, or on legacy any v1 hierarchy) is writable, by
/// `access(2)`, which also reports a read-only mount.
#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_available() -> bool {
    let Ok(sys) = System::detect() else {
        return false;
    };
    let writable = |h: &Hierarchy| access(&h.dir(&h.own_path), AccessFlags::W_OK).is_ok();
    match sys.v2() {
        Some(h) => writable(h),
        None => sys.v1().iter().filter(|h| !named_only(h)).any(writable),
    }
}

/// `%{layout: :v1 | :v2 | :hybrid, mounts: %{v2: path | nil, v1: %{ctrl =>
/// path}}, own: %{v2: path | nil, v1: %{ctrl => path}}}`. A v1 hierarchy
/// with co-mounted controllers appears under each of them.
#[rustler::nif(schedule = "DirtyIo")]
fn cgroup_layout(env: Env<'_>) -> Result<Term<'_>, Reason> {
    let sys = System::detect()?;
    let layout = match sys.layout() {
        Layout::Unified => atoms::v2(),
        Layout::Legacy => atoms::v1(),
        Layout::Hybrid => atoms::hybrid(),
    };
    let per_v1 = |f: &dyn Fn(&Hierarchy) -> String| -> Result<Term<'_>, Reason> {
        let mut pairs = Vec::new();
        for h in sys.v1() {
            for c in &h.controllers {
                pairs.push((c.encode(env), f(h).encode(env)));
            }
        }
        map(env, &pairs)
    };
    let mount = |h: &Hierarchy| h.mount_point.to_string_lossy().into_owned();
    let own = |h: &Hierarchy| h.own_path.clone();
    let mounts = map(
        env,
        &[
            (atoms::v2().encode(env), sys.v2().map(mount).encode(env)),
            (atoms::v1().encode(env), per_v1(&mount)?),
        ],
    )?;
    let owns = map(
        env,
        &[
            (atoms::v2().encode(env), sys.v2().map(own).encode(env)),
            (atoms::v1().encode(env), per_v1(&own)?),
        ],
    )?;
    map(
        env,
        &[
            (atoms::layout().encode(env), layout.encode(env)),
            (atoms::mounts().encode(env), mounts),
            (atoms::own().encode(env), owns),
        ],
    )
}
