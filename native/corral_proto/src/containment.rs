//! How a run's tree is held: the `containment` byte of `S` and the
//! `containment` field of `X`. The low two bits are the cgroup kind (0
//! none, 1 v2, 2 v1, 3 hybrid), and [`NO_SUBREAPER`] is set when the
//! helper could not become a child subreaper (an emulator, an old or
//! restricted kernel, the portable backend), so the process group and the
//! cgroup alone hold the tree. [`Containment`] is the one table of codes
//! and names; `Corral.Protocol` decodes the same codes on the BEAM's side.

/// The bit of a code set when the helper is not the tree's subreaper.
pub const NO_SUBREAPER: u8 = 4;

/// The name of `code` in `Corral.Result` and the CLI's JSON report;
/// `"unknown"` for a code no [`Containment`] has.
pub fn name(code: u8) -> &'static str {
    Containment::from_code(code).map_or("unknown", Containment::name)
}

/// The cgroup kind that holds a run: the low two bits of a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CgroupKind {
    /// No cgroup.
    None = 0,
    /// A v2 cgroup.
    V2 = 1,
    /// v1 cgroups.
    V1 = 2,
    /// The v2 tree for membership plus v1 controllers for limits.
    Hybrid = 3,
}

impl CgroupKind {
    /// The wire code: 0 none, 1 v2, 2 v1, 3 hybrid.
    pub fn code(self) -> u8 {
        self as u8
    }

    fn from_bits(bits: u8) -> CgroupKind {
        match bits & 3 {
            0 => CgroupKind::None,
            1 => CgroupKind::V2,
            2 => CgroupKind::V1,
            _ => CgroupKind::Hybrid,
        }
    }
}

/// How one run's tree is held: its cgroup kind, and whether the helper
/// is its subreaper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Containment {
    /// The cgroup, if any.
    pub cgroup: CgroupKind,
    /// The helper is the tree's child subreaper (`PR_SET_CHILD_SUBREAPER`).
    pub subreaper: bool,
}

impl Default for Containment {
    /// The subreaper alone: code 0.
    fn default() -> Containment {
        Containment {
            cgroup: CgroupKind::None,
            subreaper: true,
        }
    }
}

impl Containment {
    /// The byte of `S` (and the value of the `containment` field).
    pub fn code(self) -> u8 {
        self.cgroup.code() | if self.subreaper { 0 } else { NO_SUBREAPER }
    }

    /// Decodes a code; `None` above 7.
    pub fn from_code(code: u8) -> Option<Containment> {
        (code <= (NO_SUBREAPER | 3)).then(|| Containment {
            cgroup: CgroupKind::from_bits(code),
            subreaper: code & NO_SUBREAPER == 0,
        })
    }

    /// The name in `Corral.Result` and the CLI's JSON report.
    pub fn name(self) -> &'static str {
        match (self.cgroup, self.subreaper) {
            (CgroupKind::None, true) => "none",
            (CgroupKind::V2, true) => "cgroup_v2",
            (CgroupKind::V1, true) => "cgroup_v1",
            (CgroupKind::Hybrid, true) => "hybrid",
            (CgroupKind::None, false) => "process_group",
            (CgroupKind::V2, false) => "cgroup_v2_no_subreaper",
            (CgroupKind::V1, false) => "cgroup_v1_no_subreaper",
            (CgroupKind::Hybrid, false) => "hybrid_no_subreaper",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_follow_the_protocol() {
        // docs/protocol.md, `S`; lib/corral/protocol.ex has the same table.
        let names = [
            "none",
            "cgroup_v2",
            "cgroup_v1",
            "hybrid",
            "process_group",
            "cgroup_v2_no_subreaper",
            "cgroup_v1_no_subreaper",
            "hybrid_no_subreaper",
        ];
        for (code, want) in (0u8..).zip(names) {
            let c = Containment::from_code(code).expect("a code");
            assert_eq!(c.code(), code);
            assert_eq!(c.name(), want);
            assert_eq!(name(code), want);
            assert_eq!(c.subreaper, code < NO_SUBREAPER);
        }
        assert_eq!(Containment::from_code(8), None);
        assert_eq!(name(8), "unknown");
        assert_eq!(Containment::default().code(), 0);
    }
}
