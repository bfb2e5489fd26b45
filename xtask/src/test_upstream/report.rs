//! The report: per suite, per file results and failures; printed for people,
//! written as JSON for machines.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub file: String,
    pub test: String,
    /// The assertion text (or error) the suite printed.
    pub text: String,
    /// The documented reason, when it is an expected failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    pub file: String,
    /// `ok`, `failed`, or `not run` (the suite stopped before it).
    pub status: String,
    pub failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub suite: Suite,
    pub command: Vec<String>,
    pub passed: usize,
    pub skipped: usize,
    pub files: Vec<FileResult>,
    pub failures: Vec<Failure>,
    /// How many files the suite meant to run (`[N/M done]`'s M).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_total: Option<usize>,
    /// What stopped the suite early (`[exception]`, a timeout), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    pub exit_code: Option<i32>,
    pub seconds: u64,
    pub log: String,
}

impl SuiteReport {
    pub fn unexpected(&self) -> usize {
        self.failures
            .iter()
            .filter(|f| f.expected.is_none())
            .count()
    }

    pub fn passed_all(&self) -> bool {
        self.unexpected() == 0 && self.aborted.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub schema_version: u32,
    pub line: String,
    pub redis: String,
    pub release: String,
    pub suites: Vec<SuiteReport>,
    pub passed: bool,
}

/// The per-file lines and the failures of one suite.
pub(super) struct SuiteLines<'a>(pub(super) &'a SuiteReport);

impl fmt::Display for SuiteLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        for file in &r.files {
            match file.status.as_str() {
                "failed" => writeln!(f, "  {:<40} FAILED ({} test(s))", file.file, file.failed)?,
                s => writeln!(f, "  {:<40} {s}", file.file)?,
            }
        }
        for x in &r.failures {
            let tag = match &x.expected {
                Some(why) => format!("expected here: {why}"),
                None => "FAILED".to_string(),
            };
            writeln!(f, "  [{tag}] {} ({})", x.test, x.file)?;
            for l in x.text.lines().take(6) {
                writeln!(f, "      {l}")?;
            }
        }
        if let Some(a) = &r.aborted {
            let done = r.files.iter().filter(|f| f.status != "not run").count();
            match r.files_total {
                Some(total) => writeln!(f, "  ABORTED after {done} of {total} files: {a}")?,
                None => writeln!(f, "  ABORTED: {a}")?,
            }
        }
        writeln!(
            f,
            "  {}: {} ok, {} failed ({} expected), {} skipped in {} s; log {}",
            r.suite.name(),
            r.passed,
            r.failures.len(),
            r.failures.len() - r.unexpected(),
            r.skipped,
            r.seconds,
            r.log
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Redis {} ({}): Redis's own test suite",
            self.redis, self.release
        )?;
        for s in &self.suites {
            writeln!(
                f,
                "  {:<12} {:>5} ok {:>3} failed ({} expected) {:>4} skipped{}",
                s.suite.name(),
                s.passed,
                s.failures.len(),
                s.failures.len() - s.unexpected(),
                s.skipped,
                if s.aborted.is_some() { "  ABORTED" } else { "" }
            )?;
        }
        writeln!(f, "{}", if self.passed { "passed" } else { "FAILED" })
    }
}
