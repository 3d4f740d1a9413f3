//! Where one run is, and what is known of how it ends: the facts its exit
//! report and the helper's exit status are made of, with the rules that
//! set them. No I/O: the session acts, the phase records.

use crate::report::{Report, Status};
use corral_proto::Reason;
use std::time::Instant;

/// How far the teardown is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The child runs (or has exited and its tree was found empty).
    Running,
    /// SIGTERM was sent; SIGKILL follows at `kill_at` unless the tree
    /// empties (`None`: a grace so long its end is past the clock's).
    Terminating {
        /// When the grace period ends.
        kill_at: Option<Instant>,
    },
    /// Nobody in the tree is alive.
    Gone,
}

/// How a session ended, for `run` to turn into an exit status.
#[derive(Debug)]
pub enum Outcome {
    /// The child ran; here is its report.
    Finished(Report),
    /// The BEAM went away; the tree was ended and nobody can be told.
    Orphaned(Report),
    /// The BEAM sent something that is not the protocol.
    ProtocolError(String),
}

/// One run's phase and the facts of its end.
#[derive(Debug)]
pub struct Phase {
    step: Step,
    /// Why the helper ended the tree, when it did so first.
    reason: Option<Reason>,
    /// How the child ended, and when the helper reaped it.
    status: Option<(Status, Instant)>,
    /// The BEAM is gone: nothing more is sent.
    orphaned: bool,
    /// The BEAM broke the protocol.
    protocol_error: Option<String>,
}

impl Phase {
    /// A run whose child was just spawned.
    pub fn new() -> Phase {
        Phase {
            step: Step::Running,
            reason: None,
            status: None,
            orphaned: false,
            protocol_error: None,
        }
    }

    /// How far the teardown is.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Ends the tree for `reason`. The reason is the run's only if it is
    /// the first and the child has not ended by itself (then its status
    /// speaks). A running tree is terminated once: `terminate` sends the
    /// SIGTERM and says when the grace ends.
    pub fn end(&mut self, reason: Reason, terminate: impl FnOnce() -> Option<Instant>) {
        if self.reason.is_none() && self.status.is_none() {
            self.reason = Some(reason);
        }
        if self.step == Step::Running {
            self.step = Step::Terminating {
                kill_at: terminate(),
            };
        }
    }

    /// An OOM kill in the cgroup: the run's reason is `memory`, even when
    /// the main child then ends by itself (systemd's `OOMPolicy=stop`),
    /// unless the helper had ended it for another reason first.
    pub fn blame_memory(&mut self) {
        self.reason.get_or_insert(Reason::Memory);
    }

    /// The tree was found empty, or was killed.
    pub fn gone(&mut self) {
        self.step = Step::Gone;
    }

    /// The main child was reaped with `status`.
    pub fn child_ended(&mut self, status: Status) {
        self.status = Some((status, Instant::now()));
    }

    /// Whether the main child has not been reaped yet.
    pub fn child_running(&self) -> bool {
        self.status.is_none()
    }

    /// How the child ended and when.
    pub fn status(&self) -> Option<(Status, Instant)> {
        self.status
    }

    /// Why the helper ended the tree, if it did.
    pub fn reason(&self) -> Option<Reason> {
        self.reason
    }

    /// The BEAM is gone.
    pub fn orphan(&mut self) {
        self.orphaned = true;
    }

    /// Whether the BEAM is gone.
    pub fn orphaned(&self) -> bool {
        self.orphaned
    }

    /// The BEAM broke the protocol; the first error is the one told.
    pub fn break_protocol(&mut self, error: String) {
        self.protocol_error.get_or_insert(error);
    }

    /// Whether the BEAM broke the protocol.
    pub fn protocol_broken(&self) -> bool {
        self.protocol_error.is_some()
    }

    /// Whether the run is over: the tree is gone, the child reaped, and
    /// its output delivered (`output_done`) unless nobody listens.
    pub fn finished(&self, output_done: bool) -> bool {
        self.step == Step::Gone && self.status.is_some() && (self.orphaned || output_done)
    }

    /// The run's outcome with its `report`: a protocol error first, then
    /// a BEAM that went away, else the report to send.
    pub fn outcome(&mut self, report: Report) -> Outcome {
        match self.protocol_error.take() {
            Some(e) => Outcome::ProtocolError(e),
            None if self.orphaned => Outcome::Orphaned(report),
            None => Outcome::Finished(report),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Usage;

    fn report() -> Report {
        Report {
            reason: Reason::Exit,
            status: Status::Exited(0),
            usage: Usage::default(),
            containment: corral_proto::Containment::default(),
        }
    }

    #[test]
    fn the_first_reason_sticks_and_terminates_once() {
        let mut p = Phase::new();
        let mut terminated = 0;
        p.end(Reason::Timeout, || {
            terminated += 1;
            None
        });
        p.end(Reason::Stopped, || {
            terminated += 1;
            None
        });
        assert_eq!(terminated, 1);
        assert_eq!(p.reason(), Some(Reason::Timeout));
        assert_eq!(p.step(), Step::Terminating { kill_at: None });
        p.blame_memory();
        assert_eq!(p.reason(), Some(Reason::Timeout));
    }

    #[test]
    fn after_the_child_ended_only_an_oom_kill_gives_a_reason() {
        let mut p = Phase::new();
        p.child_ended(Status::Exited(0));
        assert!(!p.child_running());
        p.end(Reason::Exit, || None);
        assert_eq!(p.reason(), None, "the status speaks");
        p.blame_memory();
        assert_eq!(p.reason(), Some(Reason::Memory));
    }

    #[test]
    fn finished_needs_the_tree_gone_the_child_reaped_and_output_delivered() {
        let mut p = Phase::new();
        p.gone();
        assert!(!p.finished(true), "the child is not reaped");
        p.child_ended(Status::Exited(0));
        assert!(!p.finished(false), "output is still coming");
        assert!(p.finished(true));
        p.orphan();
        assert!(p.finished(false), "nobody listens");
    }

    #[test]
    fn a_protocol_error_outranks_an_orphan_which_outranks_the_report() {
        let mut p = Phase::new();
        assert!(matches!(p.outcome(report()), Outcome::Finished(_)));
        p.orphan();
        assert!(matches!(p.outcome(report()), Outcome::Orphaned(_)));
        p.break_protocol("first".into());
        p.break_protocol("second".into());
        assert!(p.protocol_broken());
        assert!(matches!(p.outcome(report()), Outcome::ProtocolError(e) if e == "first"));
    }
}
