//! `./runtest`'s and `./runtest-cluster`'s output read into a suite report.

use super::*;

/// Strip ANSI colour sequences.
pub(super) fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Read `./runtest`'s output: `[ok]: name (N ms)`, `[err]: name in
/// tests/unit/x.tcl` followed by the assertion text, `[skip]: name`,
/// `[N/M done]: unit/x (S seconds)`, `[exception]: …`, `[TIMEOUT]: …`.
pub fn parse_runtest(output: &str, suite: Suite) -> SuiteReport {
    let mut r = empty_report(suite);
    let mut files: BTreeMap<String, FileResult> = BTreeMap::new();
    let lines: Vec<String> = output.lines().map(plain).collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_end();
        if let Some(rest) = l.strip_prefix("[ok]: ") {
            let _ = rest;
            r.passed += 1;
        } else if l.starts_with("[skip]: ") || l.starts_with("[ignore]: ") {
            r.skipped += 1;
        } else if let Some(rest) = l.strip_prefix("[err]: ") {
            let (test, file) = match rest.rsplit_once(" in tests/") {
                Some((t, f)) => (t.to_string(), f.trim_end_matches(".tcl").to_string()),
                None => (rest.to_string(), String::new()),
            };
            let mut text = Vec::new();
            while i + 1 < lines.len() && !lines[i + 1].starts_with('[') && !lines[i + 1].is_empty()
            {
                i += 1;
                text.push(lines[i].trim_end().to_string());
            }
            r.failures.push(Failure {
                file,
                test,
                text: text.join("\n"),
                expected: None,
            });
        } else if let Some(rest) = l
            .strip_prefix("[exception]: ")
            .or_else(|| l.strip_prefix("[TIMEOUT]: "))
        {
            r.aborted = Some(rest.to_string());
        } else if l.starts_with('[') && l.contains(" done]: ") {
            // `[12/95 done]: unit/type/list (21 seconds)`
            if let Some((count, rest)) = l.split_once(" done]: ") {
                r.files_total = count
                    .split_once('/')
                    .and_then(|(_, m)| m.parse().ok())
                    .or(r.files_total);
                let (file, secs) = match rest.rsplit_once(" (") {
                    Some((f, s)) => (
                        f.to_string(),
                        s.split_whitespace().next().and_then(|n| n.parse().ok()),
                    ),
                    None => (rest.to_string(), None),
                };
                files.insert(
                    file.clone(),
                    FileResult {
                        file,
                        status: "ok".into(),
                        failed: 0,
                        seconds: secs,
                    },
                );
            }
        }
        i += 1;
    }
    for f in &r.failures {
        let e = files.entry(f.file.clone()).or_insert_with(|| FileResult {
            file: f.file.clone(),
            status: "not run".into(),
            failed: 0,
            seconds: None,
        });
        e.failed += 1;
        e.status = "failed".into();
    }
    r.files = files.into_values().collect();
    r
}

/// Read `./runtest-cluster`'s output: `Testing unit: 00-base.tcl`, then
/// `HH:MM:SS> description: OK` or `…: FAILED: message`.
pub fn parse_cluster(output: &str) -> SuiteReport {
    let mut r = empty_report(Suite::Cluster);
    let mut current = String::new();
    let mut files: Vec<FileResult> = Vec::new();
    for raw in output.lines() {
        let l = plain(raw);
        let l = l.trim_end();
        if let Some(f) = l.strip_prefix("Testing unit: ") {
            current = f.trim_end_matches(".tcl").to_string();
            files.push(FileResult {
                file: current.clone(),
                status: "ok".into(),
                failed: 0,
                seconds: None,
            });
        } else if l.ends_with(": OK") && l.contains("> ") {
            r.passed += 1;
        } else if let Some((head, msg)) = l.split_once(": FAILED: ") {
            let test = head.split_once("> ").map_or(head, |(_, t)| t).to_string();
            r.failures.push(Failure {
                file: current.clone(),
                test,
                text: msg.to_string(),
                expected: None,
            });
            if let Some(f) = files.last_mut() {
                f.failed += 1;
                f.status = "failed".into();
            }
        } else if l.starts_with("FAILED: caught an error in the test") {
            r.aborted = Some(l.to_string());
        }
    }
    r.files = files;
    r
}

fn empty_report(suite: Suite) -> SuiteReport {
    SuiteReport {
        suite,
        command: Vec::new(),
        passed: 0,
        skipped: 0,
        files: Vec::new(),
        failures: Vec::new(),
        files_total: None,
        aborted: None,
        exit_code: None,
        seconds: 0,
        log: String::new(),
    }
}
