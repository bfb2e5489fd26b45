//! The command layer, on top of every other module (no module below imports
//! it): [`flags`] holds the words of the command line, and each command's
//! `run` turns its arguments into its options here, at the edge, calls the
//! modules below, prints for people, and says how it went as an [`Outcome`].

pub mod flags;

mod build;
mod check;
mod host;
mod sources;

pub use crate::outcome::Outcome;
pub use flags::{Cli, Command};

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
