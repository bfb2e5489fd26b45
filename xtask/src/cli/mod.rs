//! The command layer, on top of every other module (no module below imports
//! it): [`flags`] holds the words of the command line, and each command's
//! `run` turns its arguments into its options here, at the edge, calls the
//! modules below, prints for people, and says how it went as an [`Outcome`].

pub mod flags;

mod build;
mod check;
mod host;
mod sources;

use std::process::ExitCode;

pub use flags::{Cli, Command};

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

/// A command's error ends it as [`Outcome::Unusable`], with the error and its
/// causes on stderr.
pub fn finish(result: anyhow::Result<Outcome>) -> Outcome {
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        Outcome::Unusable
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_the_documented_exit_codes() {
        assert_eq!(Outcome::of(true).code(), 0);
        assert_eq!(Outcome::of(false).code(), 1);
        assert_eq!(finish(Err(anyhow::anyhow!("no such file"))).code(), 2);
        assert_eq!(finish(Ok(Outcome::Findings)), Outcome::Findings);
    }
}
