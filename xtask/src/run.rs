//! Running long steps: full output to a log file, a spinner with the elapsed
//! time and the latest log line on the terminal, and on failure the tail of the
//! log with its path.

use std::{
    fs::{self, File},
    io::{BufRead, BufReader, Seek, SeekFrom},
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

/// What became of a step: a cached step built or found, or a command run
/// inside one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Built,
    Cached,
    Ran,
}

/// One step of a run, for machines (the run record of `dist`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// `openssl-3.5.7`, `redis-7.0.15 compile`.
    pub name: String,
    pub state: StepState,
    /// A cached step's key and folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// A command's time and log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

/// The steps of a run as they finish, from any thread.
#[derive(Debug, Default)]
pub struct StepLog(Mutex<Vec<StepRecord>>);

impl StepLog {
    pub fn push(&self, step: StepRecord) {
        if let Ok(mut steps) = self.0.lock() {
            steps.push(step);
        }
    }

    /// [`logged`], recorded.
    pub fn logged(&self, step: &str, cmd: Command, log: &Path) -> Result<Duration> {
        let took = logged(step, cmd, log)?;
        self.push(StepRecord {
            name: step.to_string(),
            state: StepState::Ran,
            key: None,
            dir: None,
            seconds: Some(took.as_secs_f64()),
            log: Some(log.to_path_buf()),
        });
        Ok(took)
    }

    /// Every step so far, in the order they finished.
    pub fn steps(&self) -> Vec<StepRecord> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The number of CPUs: the default of every `--jobs`.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Steps may run at once (OpenSSL's build beside Redis's compile): their
/// spinners share the terminal through one `MultiProgress`.
fn bars() -> &'static MultiProgress {
    static BARS: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// How many log lines a failure prints.
const TAIL_LINES: usize = 40;

/// Run `cmd` with stdout and stderr appended to `log`.
pub fn logged(step: &str, mut cmd: Command, log: &Path) -> Result<Duration> {
    if let Some(parent) = log.parent() {
        fs::create_dir_all(parent)?;
    }
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let start = Instant::now();
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("{step}: starting {:?}", cmd.get_program()))?;

    let bar = spinner(step);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(line) = last_line(log) {
            bar.set_message(line);
        }
        bar.tick();
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = start.elapsed();
    bar.finish_and_clear();
    bars().remove(&bar);
    if !status.success() {
        let tail = tail(log, TAIL_LINES).unwrap_or_default();
        bail!(
            "{step} failed ({status}) after {:.0?}; last {TAIL_LINES} lines of {}:\n{tail}\nfull log: {}",
            took,
            log.display(),
            log.display()
        );
    }
    bars().suspend(|| {
        eprintln!(
            "  {step}{DONE}{:.1}s (log: {})",
            took.as_secs_f64(),
            log.display()
        )
    });
    Ok(took)
}

/// What [`logged`] prints after a step's name when it finishes.
const DONE: &str = ": done in ";

fn spinner(step: &str) -> ProgressBar {
    let bar = bars().add(ProgressBar::new_spinner());
    let style = ProgressStyle::with_template("  {spinner} {prefix} [{elapsed}] {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_prefix(step.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The last non-empty line of a growing log, shortened for the spinner.
fn last_line(log: &Path) -> Option<String> {
    let mut f = File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    let line = lines.iter().rev().find(|l| !l.trim().is_empty())?;
    Some(line.chars().filter(|c| !c.is_control()).take(100).collect())
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> Result<String> {
    let bytes = fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(n)..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_shows_the_tail_and_the_log_path() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("step.log");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "for i in $(seq 1 100); do echo line$i; done; echo boom >&2; exit 3",
        ]);
        let err = format!("{:#}", logged("demo", cmd, &log).unwrap_err());
        assert!(err.contains("line100") && err.contains("boom"), "{err}");
        assert!(!err.contains("line50\n"), "only the tail: {err}");
        assert!(err.contains(&log.display().to_string()));
        assert!(
            fs::read_to_string(&log).unwrap().contains("line1\n"),
            "the log keeps everything"
        );
    }

    #[test]
    fn a_step_log_records_each_command_with_its_time_and_log() {
        let d = tempfile::tempdir().unwrap();
        let steps = StepLog::default();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hi"]);
        steps
            .logged("demo step", cmd, &d.path().join("demo.log"))
            .unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 1"]);
        assert!(steps
            .logged("failing", cmd, &d.path().join("f.log"))
            .is_err());
        let got = steps.steps();
        assert_eq!(got.len(), 1, "a failed command is not recorded: {got:?}");
        assert_eq!(got[0].name, "demo step");
        assert_eq!(got[0].state, StepState::Ran);
        assert!(got[0].seconds.is_some_and(|s| s >= 0.0));
        assert_eq!(
            got[0].log.as_deref(),
            Some(d.path().join("demo.log").as_path())
        );
    }

    #[test]
    fn success_returns_and_logs() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("ok.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo fine"]);
        logged("ok", cmd, &log).unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "fine\n");
    }
}
