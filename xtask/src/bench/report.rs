//! The bench report: rows of A/B measurements with their targets, written as
//! `target/bench/report.json` and rendered as Markdown tables (the terminal
//! output and the README's "Benchmarks" section are the same text).

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::stats::{paired_ratios, Summary};

pub const SCHEMA: &str = "portable-redis/bench-report";
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Wall-clock time; lower is better.
    Seconds,
    /// Throughput; higher is better.
    RequestsPerSecond,
    /// CPU time per request; lower is better.
    Microseconds,
    /// Instructions executed per request; lower is better.
    Instructions,
}

/// What a row must show to pass. Ratios are A/B, each round's pair first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Target {
    RatioAtMost {
        value: f64,
    },
    RatioAtLeast {
        value: f64,
    },
    /// The median of A, in the row's unit.
    MedianAtMost {
        value: f64,
    },
}

impl Target {
    fn passes(&self, a: &Summary, ratio: Option<&Summary>) -> Option<bool> {
        match *self {
            Target::RatioAtMost { value } => ratio.map(|r| r.median <= value),
            Target::RatioAtLeast { value } => ratio.map(|r| r.median >= value),
            Target::MedianAtMost { value } => Some(a.median <= value),
        }
    }

    fn render(&self, unit: Unit) -> String {
        match *self {
            Target::RatioAtMost { value } => format!("≤ {value:.2}"),
            Target::RatioAtLeast { value } => format!("≥ {value:.2}"),
            Target::MedianAtMost { value } => format!("≤ {}", value_text(value, unit)),
        }
    }
}

/// One side's samples, in measurement order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    pub samples: Vec<f64>,
    pub summary: Summary,
}

impl Measure {
    pub fn new(samples: Vec<f64>) -> Result<Measure> {
        let summary =
            Summary::of(&samples).context("a measurement needs at least one finite sample")?;
        Ok(Measure { samples, summary })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    pub unit: Unit,
    pub a: Measure,
    pub b: Option<Measure>,
    /// A/B per round.
    pub ratio: Option<Summary>,
    pub target: Option<Target>,
    /// `None` when the row has no target.
    pub pass: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Row {
    /// A against B, round by round.
    pub fn compare(
        name: &str,
        unit: Unit,
        a: Vec<f64>,
        b: Vec<f64>,
        target: Option<Target>,
    ) -> Result<Row> {
        let ratio = Summary::of(&paired_ratios(&a, &b));
        Row::build(name, unit, a, Some(b), ratio, target)
    }

    /// A alone (no reference to compare with, or a ratio computed elsewhere).
    pub fn single(name: &str, unit: Unit, a: Vec<f64>, target: Option<Target>) -> Result<Row> {
        Row::build(name, unit, a, None, None, target)
    }

    fn build(
        name: &str,
        unit: Unit,
        a: Vec<f64>,
        b: Option<Vec<f64>>,
        ratio: Option<Summary>,
        target: Option<Target>,
    ) -> Result<Row> {
        let a = Measure::new(a).with_context(|| format!("row `{name}`, side A"))?;
        let b = b
            .map(Measure::new)
            .transpose()
            .with_context(|| format!("row `{name}`, side B"))?;
        let pass = target.and_then(|t| t.passes(&a.summary, ratio.as_ref()));
        Ok(Row {
            name: name.to_string(),
            unit,
            a,
            b,
            ratio,
            target,
            pass,
            note: None,
        })
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Row {
        self.note = Some(note.into());
        self
    }

    /// Fail the row whatever its numbers say (e.g. a step rebuilt that must not).
    pub fn fail(mut self, why: impl Into<String>) -> Row {
        self.pass = Some(false);
        self.with_note(why)
    }
}

/// One table: a part of the bench with its two sides' names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// `build`, `noop`, `incremental`, `binaries`.
    pub id: String,
    pub title: String,
    pub a: String,
    pub b: Option<String>,
    pub rows: Vec<Row>,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub os: String,
    /// 1, 5 and 15 minute load averages when the bench started and ended.
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
}

impl Machine {
    pub fn describe(&self) -> String {
        format!(
            "{} ({} cores, {:.0} GiB), {}, Linux {}; load average {:.1} at the start, {:.1} at the end",
            self.cpu,
            self.cores,
            self.memory_gib,
            self.os,
            self.kernel,
            self.load_before[0],
            self.load_after[0]
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub schema_version: u32,
    /// Seconds since the Unix epoch when the bench started.
    pub started_unix: u64,
    /// How long the whole bench took.
    pub seconds: f64,
    pub machine: Machine,
    pub sections: Vec<Section>,
    /// Every row with a target met it.
    pub passed: bool,
}

impl Report {
    pub fn new(
        started_unix: u64,
        seconds: f64,
        machine: Machine,
        sections: Vec<Section>,
    ) -> Report {
        let passed = sections
            .iter()
            .flat_map(|s| &s.rows)
            .all(|r| r.pass != Some(false));
        Report {
            schema: SCHEMA.into(),
            schema_version: SCHEMA_VERSION,
            started_unix,
            seconds,
            machine,
            sections,
            passed,
        }
    }

    /// Markdown: the machine, then one table per section.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Machine: {}.", self.machine.describe());
        let _ = writeln!(
            out,
            "The whole bench took {}. Each cell is the median of its runs; ± is half the \
             min–max range relative to the median; ratios are A/B per round (A and B run \
             back to back, alternating which goes first).",
            duration_text(self.seconds)
        );
        for s in &self.sections {
            out.push('\n');
            out.push_str(&section_markdown(s));
        }
        out
    }
}

fn section_markdown(s: &Section) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "**{}**\n", s.title);
    let b = s.b.as_deref().unwrap_or("–");
    let ratio = match &s.b {
        Some(b) => format!("{}/{}", s.a, b),
        None => "ratio".into(),
    };
    let _ = writeln!(
        out,
        "| measure | {} | {b} | {ratio} | target | result |",
        s.a
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---|");
    for r in &s.rows {
        let a = measure_text(&r.a, r.unit);
        let b =
            r.b.as_ref()
                .map(|m| measure_text(m, r.unit))
                .unwrap_or_else(|| "–".into());
        let ratio = r
            .ratio
            .as_ref()
            .map(ratio_text)
            .unwrap_or_else(|| "–".into());
        let target = r
            .target
            .map(|t| t.render(r.unit))
            .unwrap_or_else(|| "–".into());
        let result = match r.pass {
            Some(true) => "ok",
            Some(false) => "**miss**",
            None => "",
        };
        let name = match &r.note {
            Some(n) => format!("{} ({n})", r.name),
            None => r.name.clone(),
        };
        let _ = writeln!(
            out,
            "| {name} | {a} | {b} | {ratio} | {target} | {result} |"
        );
    }
    for n in &s.notes {
        let _ = writeln!(out, "\n{n}");
    }
    out
}

/// A value in its unit: `12.3 s`, `0.84 s`, `85.2k/s`.
pub fn value_text(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Seconds if v >= 10.0 => format!("{v:.1} s"),
        Unit::Seconds => format!("{v:.2} s"),
        Unit::RequestsPerSecond if v >= 1e6 => format!("{:.2}M/s", v / 1e6),
        Unit::RequestsPerSecond if v >= 1e3 => format!("{:.1}k/s", v / 1e3),
        Unit::RequestsPerSecond => format!("{v:.0}/s"),
        Unit::Microseconds => format!("{v:.2} µs"),
        Unit::Instructions => format!("{v:.0}"),
    }
}

fn spread_text(s: &Summary) -> String {
    if s.n > 1 {
        format!(" ±{:.1}%", s.spread * 100.0)
    } else {
        String::new()
    }
}

fn measure_text(m: &Measure, unit: Unit) -> String {
    format!(
        "{}{}",
        value_text(m.summary.median, unit),
        spread_text(&m.summary)
    )
}

fn ratio_text(s: &Summary) -> String {
    format!("{:.2}{}", s.median, spread_text(s))
}

/// `12m 05s`, `48s`.
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The first `model name` and the number of `processor` entries of /proc/cpuinfo.
pub fn parse_cpuinfo(text: &str) -> (String, usize) {
    let field = |l: &str, key: &str| {
        l.split_once(':')
            .filter(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
    };
    let model = text
        .lines()
        .find_map(|l| field(l, "model name"))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = text
        .lines()
        .filter(|l| field(l, "processor").is_some())
        .count();
    (model, cores)
}

/// The three load averages of /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// `MemTotal` of /proc/meminfo, in GiB.
pub fn parse_meminfo_gib(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            cpu: "AMD EPYC".into(),
            cores: 2,
            memory_gib: 24.0,
            kernel: "6.1.0".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            load_before: [8.5, 8.0, 7.0],
            load_after: [9.0, 8.0, 7.0],
        }
    }

    fn sample_report() -> Report {
        let build = Section {
            id: "build".into(),
            title: "Cold build: xtask against a plain script".into(),
            a: "xtask".into(),
            b: Some("script".into()),
            rows: vec![Row::compare(
                "OpenSSL + Redis",
                Unit::Seconds,
                vec![200.0, 210.0],
                vec![205.0, 200.0],
                Some(Target::RatioAtMost { value: 1.0 }),
            )
            .unwrap()],
            notes: vec!["both sides in bwrap".into()],
        };
        let noop = Section {
            id: "noop".into(),
            title: "No-op dist".into(),
            a: "dist".into(),
            b: None,
            rows: vec![Row::single(
                "nothing changed",
                Unit::Seconds,
                vec![1.2, 1.4, 1.3],
                Some(Target::MedianAtMost { value: 2.0 }),
            )
            .unwrap()],
            notes: vec![],
        };
        let bins = Section {
            id: "binaries".into(),
            title: "redis-server throughput".into(),
            a: "portable".into(),
            b: Some("debian".into()),
            rows: vec![Row::compare(
                "GET, TLS",
                Unit::RequestsPerSecond,
                vec![90_000.0, 95_000.0, 100_000.0],
                vec![100_000.0, 100_000.0, 100_000.0],
                Some(Target::RatioAtLeast { value: 1.0 }),
            )
            .unwrap()],
            notes: vec![],
        };
        Report::new(1_700_000_000, 754.4, machine(), vec![build, noop, bins])
    }

    #[test]
    fn rows_compute_paired_ratios_and_pass_or_miss() {
        let r = sample_report();
        let build = &r.sections[0].rows[0];
        let ratio = build.ratio.unwrap();
        assert_eq!(ratio.n, 2);
        assert!((ratio.median - (200.0 / 205.0 + 210.0 / 200.0) / 2.0).abs() < 1e-12);
        assert_eq!(build.pass, Some(false), "median ratio 1.0122 > 1.0");
        assert_eq!(r.sections[1].rows[0].pass, Some(true), "1.3 s ≤ 2 s");
        assert_eq!(r.sections[2].rows[0].pass, Some(false), "0.95 < 1.0");
        assert!(!r.passed);
        let ok = Row::single("x", Unit::Seconds, vec![1.0], None).unwrap();
        assert_eq!(ok.pass, None);
        assert_eq!(ok.clone().fail("rebuilt OpenSSL").pass, Some(false));
        assert!(Row::single("empty", Unit::Seconds, vec![], None).is_err());
    }

    #[test]
    fn report_json_has_the_documented_shape_and_round_trips() {
        let r = sample_report();
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["schema_version"], SCHEMA_VERSION);
        assert_eq!(v["machine"]["cores"], 2);
        assert_eq!(v["machine"]["load_before"][0], 8.5);
        let row = &v["sections"][0]["rows"][0];
        assert_eq!(row["unit"], "seconds");
        assert_eq!(row["a"]["samples"], serde_json::json!([200.0, 210.0]));
        assert_eq!(row["a"]["summary"]["median"], 205.0);
        assert_eq!(row["target"]["check"], "ratio_at_most");
        assert_eq!(row["target"]["value"], 1.0);
        assert_eq!(row["pass"], false);
        assert!(row.get("note").is_none());
        assert_eq!(v["sections"][1]["rows"][0]["b"], serde_json::Value::Null);
        assert_eq!(v["sections"][2]["rows"][0]["unit"], "requests_per_second");
        assert_eq!(v["passed"], false);
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn markdown_tables_show_medians_spread_ratios_and_results() {
        let md = sample_report().markdown();
        assert!(
            md.starts_with("Machine: AMD EPYC (2 cores, 24 GiB)"),
            "{md}"
        );
        assert!(
            md.contains("load average 8.5 at the start, 9.0 at the end"),
            "{md}"
        );
        assert!(md.contains("took 12m 34s"), "{md}");
        assert!(
            md.contains("| measure | xtask | script | xtask/script | target | result |"),
            "{md}"
        );
        assert!(
            md.contains("| OpenSSL + Redis | 205.0 s ±2.4% | 202.5 s ±1.2% | 1.01 ±3.7% | ≤ 1.00 | **miss** |"),
            "{md}"
        );
        assert!(
            md.contains("| nothing changed | 1.30 s ±7.7% | – | – | ≤ 2.00 s | ok |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| GET, TLS | 95.0k/s ±5.3% | 100.0k/s ±0.0% | 0.95 ±5.3% | ≥ 1.00 | **miss** |"
            ),
            "{md}"
        );
        assert!(md.contains("\nboth sides in bwrap\n"), "{md}");
        let header_rows = md.lines().filter(|l| l.starts_with("|---")).count();
        assert_eq!(header_rows, 3, "one table per section");
    }

    #[test]
    fn values_are_rendered_in_their_unit() {
        assert_eq!(value_text(0.8412, Unit::Seconds), "0.84 s");
        assert_eq!(value_text(123.45, Unit::Seconds), "123.5 s");
        assert_eq!(value_text(85_234.0, Unit::RequestsPerSecond), "85.2k/s");
        assert_eq!(value_text(1_234_567.0, Unit::RequestsPerSecond), "1.23M/s");
        assert_eq!(value_text(950.0, Unit::RequestsPerSecond), "950/s");
        assert_eq!(value_text(12.345, Unit::Microseconds), "12.35 µs");
        assert_eq!(value_text(4412.6, Unit::Instructions), "4413");
        assert_eq!(duration_text(48.4), "48s");
        assert_eq!(duration_text(725.0), "12m 05s");
    }

    #[test]
    fn proc_files_are_parsed() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpuinfo(cpuinfo), ("AMD EPYC 7B13".to_string(), 2));
        assert_eq!(parse_cpuinfo("").1, 0);
        assert_eq!(
            parse_loadavg("9.52 9.50 8.85 4/321 12345\n"),
            Some([9.52, 9.5, 8.85])
        );
        assert_eq!(parse_loadavg("garbage"), None);
        let gib = parse_meminfo_gib("MemTotal:       25165824 kB\nMemFree: 1 kB\n").unwrap();
        assert!((gib - 24.0).abs() < 1e-9);
    }
}
