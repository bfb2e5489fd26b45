//! How a command went: its exit status. Every command ends in an
//! [`Outcome`]; the command layer (`cli`) turns an error into
//! [`Outcome::Unusable`].

use std::process::ExitCode;

/// How a command went: its exit status. Every command ends in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: it did what was asked and everything it checked passed.
    Pass,
    /// Exit 1: it ran and found something: a violation, a failing patch or
    /// test, an open CVE, a difference.
    Findings,
    /// Exit 2: unusable input (a missing file, a bad pin, an error); it
    /// could not say.
    Unusable,
}

impl Outcome {
    /// [`Outcome::Pass`] when `passed`, else [`Outcome::Findings`].
    pub fn of(passed: bool) -> Outcome {
        if passed {
            Outcome::Pass
        } else {
            Outcome::Findings
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Findings => 1,
            Outcome::Unusable => 2,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(o.code())
    }
}
