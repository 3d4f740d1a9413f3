//! Using a [`Group`]: membership, limits and raw file access, and which of
//! the group's directories each file lives in.

use std::path::Path;

use crate::error::{Error, Result};
use crate::group::Group;
use crate::limits::{self, Api, Controller, Limits};
use crate::placement::not_mounted;
use crate::{fs, validate_file, Layout};

impl Group {
    /// Moves process `pid` (all its threads) into the group in every
    /// hierarchy.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the `cgroup.procs` write (`ESRCH` for no such process).
    pub fn add(&self, pid: i32) -> Result<()> {
        self.procs_files()
            .iter()
            .try_for_each(|f| fs::write(f, &pid.to_string()))
    }

    /// Moves process `pid` back to the group's parent in every hierarchy.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the parent's `cgroup.procs` write.
    pub fn release(&self, pid: i32) -> Result<()> {
        for d in self.v1.iter().chain(&self.v2) {
            let parent = d.path.parent().unwrap_or(&d.path);
            fs::write(&parent.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The processes in the group: the union over its hierarchies, sorted.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a `cgroup.procs` file cannot be read;
    /// [`Error::Parse`] if it holds something other than pids.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        for d in self.all() {
            let file = d.path.join("cgroup.procs");
            let text = fs::read(&file)?;
            for line in text.lines() {
                let pid = line.trim().parse().map_err(|_| Error::Parse {
                    path: file.clone(),
                    content: text.clone(),
                })?;
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Applies `limits` (keys left `None` are not touched).
    ///
    /// # Errors
    ///
    /// As for [`Group::create`]: [`Error::Unsupported`], [`Error::Invalid`],
    /// [`Error::Controller`] or [`Error::Io`]. On legacy and hybrid the group
    /// must already be in the v1 hierarchy of each controller the limits
    /// need (pass them to [`Group::create`]).
    pub fn set(&self, limits: &Limits) -> Result<()> {
        let layout = self.sys.layout();
        let api = Api::of(layout);
        let steps = limits::plan(limits, api, layout)?;
        let needed = limits.controllers_needed();
        if api == Api::V2 {
            self.enable_v2(&needed.iter().map(|c| c.name()).collect::<Vec<_>>())?;
        } else {
            needed
                .iter()
                .try_for_each(|c| self.require_v1(c.v1_name()))?;
        }
        limits::apply(&steps, &mut |w| {
            fs::write(&self.limit_dir(w.controller, api)?.join(w.file), &w.value)
        })
    }

    /// Reads limit `key` back (see [`crate::Key`]), in the syntax
    /// [`Limits::set_str`] accepts, whatever the layout.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for an unknown key, [`Error::Unsupported`] if the
    /// layout has no such setting, [`Error::Controller`] if the group is not
    /// in the controller's hierarchy, [`Error::Io`] if the read fails.
    pub fn get(&self, key: &str) -> Result<String> {
        let layout = self.sys.layout();
        let api = Api::of(layout);
        limits::get(key, api, layout, &mut |c, file| {
            fs::read(&self.limit_dir(c, api)?.join(file))
        })
    }

    /// Reads a raw file of the group, such as `memory.stat` or `cgroup.events`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] unless `file` looks like `<controller>.<name>`;
    /// [`Error::Controller`] if the group is in no hierarchy with that
    /// controller; [`Error::Io`] if the read fails.
    pub fn read(&self, file: &str) -> Result<String> {
        validate_file(file)?;
        fs::read(&self.file_dir(file)?.join(file))
    }

    /// Writes a raw file of the group, such as `memory.swappiness`.
    ///
    /// # Errors
    ///
    /// As for [`Group::read`].
    pub fn write(&self, file: &str, value: &str) -> Result<()> {
        validate_file(file)?;
        fs::write(&self.file_dir(file)?.join(file), value)
    }

    /// The directory limit writes for `c` go to.
    fn limit_dir(&self, c: Controller, api: Api) -> Result<&Path> {
        match api {
            Api::V2 => self.v2.as_ref().map(|d| d.path.as_path()),
            Api::V1 => self.v1_dir(c.v1_name()),
        }
        .ok_or_else(|| {
            self.not_joined(if api == Api::V2 {
                c.name()
            } else {
                c.v1_name()
            })
        })
    }

    /// The directory for a raw controller write (`:cgroup_sets`).
    pub(crate) fn dir_of(&self, controller: &str) -> Result<&Path> {
        match (self.sys.layout(), &self.v2) {
            (Layout::Unified, Some(d)) => Ok(&d.path),
            _ => self
                .v1_dir(controller)
                .ok_or_else(|| self.not_joined(controller)),
        }
    }

    /// The directory holding raw file `file`: `cgroup.*` in the v2 tree if
    /// any; `<controller>.*` in that controller's v1 hierarchy, else v2.
    fn file_dir(&self, file: &str) -> Result<&Path> {
        let prefix = file.split('.').next().unwrap_or(file);
        let v2 = self.v2.as_ref().map(|d| d.path.as_path());
        let found = match prefix {
            "cgroup" => v2.or(self.v1.first().map(|d| d.path.as_path())),
            _ => self.v1_dir(prefix).or(v2),
        };
        found.ok_or_else(|| self.not_joined(prefix))
    }

    fn not_joined(&self, controller: &str) -> Error {
        Error::Controller {
            controller: controller.to_owned(),
            path: self.dirs().into_iter().next().unwrap_or_default(),
            hint: "the group is in no hierarchy with this controller".into(),
        }
    }

    /// Checks that the group is in the v1 hierarchy of `controller`.
    fn require_v1(&self, controller: &str) -> Result<()> {
        if self.v1_dir(controller).is_some() {
            return Ok(());
        }
        Err(match self.sys.v1_for(controller) {
            None => not_mounted(controller),
            Some(h) => Error::Controller {
                controller: controller.to_owned(),
                path: h.dir(&self.spot.rel(h)),
                hint: "the group was created without it; pass it in the limits or raw controllers at creation".into(),
            },
        })
    }
}
