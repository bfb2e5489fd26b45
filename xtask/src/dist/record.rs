//! The run record: what a `dist` did, for machines. Its stages with their
//! times, every build step (built or cached, with its key and folder) and
//! every command it ran (with its time and log), and the outputs with their
//! hashes. `<state>/runs/<release>.json`, schema `portable-redis/dist-run`;
//! bench and the tests read it, never the terminal.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{publish::json_bytes, OutputInfo};
use crate::{
    fsutil,
    pins::{Pins, SourcePin},
    project::Project,
    run::{StepRecord, StepState},
};

pub const RUN_SCHEMA: &str = "portable-redis/dist-run";

/// One stage of the pipeline and its wall time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    pub name: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: String,
    pub schema_version: u32,
    pub release: String,
    /// The sum of the stages.
    pub seconds: f64,
    pub stages: Vec<StageTime>,
    pub steps: Vec<StepRecord>,
    /// The release folder's files this run wrote or found unchanged.
    pub outputs: Vec<OutputInfo>,
}

impl RunRecord {
    pub fn new(
        release: &str,
        stages: Vec<StageTime>,
        steps: Vec<StepRecord>,
        outputs: Vec<OutputInfo>,
    ) -> RunRecord {
        RunRecord {
            schema: RUN_SCHEMA.into(),
            schema_version: 1,
            release: release.into(),
            seconds: stages.iter().map(|s| s.seconds).sum(),
            stages,
            steps,
            outputs,
        }
    }

    /// Where the record of `release` is kept in a state folder.
    pub fn path(state: &Path, release: &str) -> PathBuf {
        state.join("runs").join(format!("{release}.json"))
    }

    /// The record of the last successful `dist` of the `redis` pin for the
    /// default target in `state`.
    pub fn load(state: &Path, pins: &Pins, redis: &SourcePin) -> Result<RunRecord> {
        RunRecord::load_release(state, &super::release_name(redis, pins.target(None)?))
    }

    /// The record of the last successful `dist` of `release` in `state`.
    pub fn load_release(state: &Path, release: &str) -> Result<RunRecord> {
        let path = RunRecord::path(state, release);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}: has `dist` run there?", path.display()))?;
        let record: RunRecord = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a run record", path.display()))?;
        if record.schema != RUN_SCHEMA {
            anyhow::bail!(
                "{} is a {}, not a {RUN_SCHEMA}",
                path.display(),
                record.schema
            );
        }
        Ok(record)
    }

    /// A run that starts removes the last one's record: a `dist` that fails
    /// leaves none.
    pub fn forget(state: &Path, release: &str) -> Result<()> {
        let path = RunRecord::path(state, release);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    pub fn write(&self, project: &Project) -> Result<PathBuf> {
        let path = RunRecord::path(&project.state, &self.release);
        fsutil::write_atomic(&path, &json_bytes(self)?)?;
        Ok(path)
    }

    /// The steps in `state`.
    pub fn steps_in(&self, state: StepState) -> impl Iterator<Item = &StepRecord> {
        self.steps.iter().filter(move |s| s.state == state)
    }

    /// The seconds of the command named `name`, if it ran.
    pub fn seconds_of(&self, name: &str) -> Option<f64> {
        self.steps_in(StepState::Ran)
            .find(|s| s.name == name)
            .and_then(|s| s.seconds)
    }

    /// Nothing was built and no command ran: every step was found cached.
    pub fn nothing_built(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.state == StepState::Cached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, state: StepState, seconds: Option<f64>) -> StepRecord {
        StepRecord {
            name: name.into(),
            state,
            key: None,
            dir: None,
            seconds,
            log: None,
        }
    }

    #[test]
    fn a_record_reads_back_and_answers_what_bench_asks() {
        let stages = vec![
            StageTime {
                name: "build".into(),
                seconds: 60.0,
            },
            StageTime {
                name: "package".into(),
                seconds: 1.5,
            },
        ];
        let built = RunRecord::new(
            "portable-redis-7.0.15-x86_64-linux-glibc2.11",
            stages.clone(),
            vec![
                step("openssl-3.5.7", StepState::Cached, None),
                step("redis-7.0.15 compile", StepState::Ran, Some(50.0)),
                step("redis-7.0.15 link", StepState::Ran, Some(2.0)),
                step("redis-7.0.15", StepState::Built, None),
            ],
            Vec::new(),
        );
        assert_eq!(built.seconds, 61.5);
        assert_eq!(built.seconds_of("redis-7.0.15 compile"), Some(50.0));
        assert_eq!(built.seconds_of("openssl-3.5.7"), None, "not a command");
        assert!(!built.nothing_built());
        let text = String::from_utf8(json_bytes(&built).unwrap()).unwrap();
        assert!(text.contains("\"schema\": \"portable-redis/dist-run\""));
        assert!(text.contains("\"state\": \"cached\""));
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, built);

        let noop = RunRecord::new(
            "r",
            stages,
            vec![
                step("openssl-3.5.7", StepState::Cached, None),
                step("redis-7.0.15", StepState::Cached, None),
            ],
            Vec::new(),
        );
        assert!(noop.nothing_built());
        assert!(!RunRecord::new("r", Vec::new(), Vec::new(), Vec::new()).nothing_built());
    }
}
