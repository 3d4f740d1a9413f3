//! The user and group the child runs as, looked up before the fork: the
//! user database may take locks and allocate, which the child must not.

use super::{Error, Spec, Stage};
use nix::errno::Errno;
use nix::unistd::{Gid, Group, Uid, User};

/// Credentials resolved before fork.
pub(super) struct Creds {
    pub(super) uid: Option<Uid>,
    pub(super) gid: Option<Gid>,
    pub(super) groups: Option<Vec<Gid>>,
}

/// A user or group that the user database does not have: no system
/// call failed, so the message is `what` alone (EINVAL is only the errno
/// the F frame must carry).
fn lookup(what: String) -> Error {
    Error::plain(Stage::User, Errno::EINVAL, what)
}

/// The user's id and primary group. A number is looked up too: dropping
/// to a uid must also drop root's group, and the passwd entry says which
/// group to take. A number without an entry has no primary group, so it
/// needs `--gid` (`have_gid`); without one it is refused rather than left
/// in GID 0.
fn resolve_user(name: &str, have_gid: bool) -> Result<(Uid, Option<Gid>), Error> {
    let not_found = lookup;
    if let Ok(n) = name.parse::<u32>() {
        let uid = Uid::from_raw(n);
        return match User::from_uid(uid) {
            Ok(Some(u)) => Ok((uid, Some(u.gid))),
            Ok(None) if have_gid => Ok((uid, None)),
            Ok(None) => Err(not_found(format!(
                "uid {n} has no passwd entry to take a primary group from; give a gid"
            ))),
            Err(e) => Err(Error::new(Stage::User, e, format!("looking up uid {n}"))),
        };
    }
    match User::from_name(name) {
        Ok(Some(u)) => Ok((u.uid, Some(u.gid))),
        Ok(None) => Err(not_found(format!("no such user {name:?}"))),
        Err(e) => Err(Error::new(
            Stage::User,
            e,
            format!("looking up user {name:?}"),
        )),
    }
}

fn resolve_group(name: &str) -> Result<Gid, Error> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(lookup(format!("no such group {name:?}"))),
        Err(e) => Err(Error::new(
            Stage::User,
            e,
            format!("looking up group {name:?}"),
        )),
    }
}

impl Spec {
    /// The user, group and supplementary groups to switch to.
    ///
    /// # Errors
    /// A user or group the database does not have (stage `user`).
    pub(super) fn creds(&self) -> Result<Creds, Error> {
        let (uid, user_gid) = match &self.uid {
            Some(u) => {
                let (uid, g) = resolve_user(u, self.gid.is_some())?;
                (Some(uid), g)
            }
            None => (None, None),
        };
        let gid = match &self.gid {
            Some(g) => Some(resolve_group(g)?),
            None => user_gid,
        };
        let groups = if !self.groups.is_empty() {
            Some(
                self.groups
                    .iter()
                    .map(|g| resolve_group(g))
                    .collect::<Result<_, _>>()?,
            )
        } else if uid.is_some() {
            // Dropping to another user must not keep root's supplementary groups.
            Some(Vec::new())
        } else {
            None
        };
        Ok(Creds { uid, gid, groups })
    }
}
