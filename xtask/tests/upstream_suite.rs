//! Redis's own test suite on the packaged binaries of each line: the suites
//! CI has time for (TLS, the module API, the cluster unit tests and a fixed
//! sample of the rest). `cargo xtask test-upstream` (and `dist
//! --check-upstream`) runs all of it.

mod common;

use std::{fs, sync::Mutex};

use common::{release, repo_root, xtask};

/// The suites CI runs, about 7 minutes a line on 2 cores.
const SUITES: &str = "sample,tls,moduleapi,cluster-unit";

/// Each suite must pass at least this share of the tests the same suite
/// passed in the last full run (README.md's table).
const MIN_SHARE_OF_LAST_RUN: f64 = 0.95;
/// ... and skip at most this many more tests than that run did.
const MORE_SKIPS_ALLOWED: u64 = 2;

/// (passed, skipped) of `suite` on `line` in README.md's table of the last
/// full run: `| tls | 80 ok (157 s) | 88 ok, 1 skipped (155 s) |`, the
/// sample's row named `sample (CI)`.
fn last_full_run(line: &str, suite: &str) -> (u64, u64) {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let table: Vec<Vec<String>> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| suite | "))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert!(!table.is_empty(), "README.md has no `| suite |` table");
    let column = table[0]
        .iter()
        .position(|h| h.starts_with(&format!("{line}.")))
        .unwrap_or_else(|| panic!("README's suite table has no column for {line}"));
    let row = table
        .iter()
        .find(|r| r[0] == suite || r[0] == format!("{suite} (CI)"))
        .unwrap_or_else(|| panic!("README's suite table has no row for {suite}"));
    let cell = row
        .get(column)
        .unwrap_or_else(|| panic!("README's {suite} row has no {line} cell: {row:?}"));
    let ok = count(cell, "ok");
    assert!(
        ok > 0,
        "README's {suite} cell for {line} names no ok count: {cell:?}"
    );
    (ok, count(cell, "skipped"))
}

/// The number before `word` in a cell: `2,160 ok, 16 skipped (54 s)`.
fn count(cell: &str, word: &str) -> u64 {
    let words: Vec<&str> = cell.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches(',') == word)
        .and_then(|w| w[0].replace(',', "").parse().ok())
        .unwrap_or(0)
}

/// One line at a time: two suites side by side on 2 cores break timing
/// assumptions of the tests.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn suites_pass(line: &str) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = release(line);
    let out = xtask()
        .args(["test-upstream", "--redis", line, "--suite", SUITES, "--bin"])
        .arg(&r.bin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}{stdout}");
    let report: serde_json::Value = serde_json::from_slice(
        &fs::read(
            repo_root()
                .join("target/test-upstream")
                .join(line)
                .join("report.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(report["line"], line);
    let suites = report["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 4, "{report}");
    for s in suites {
        let name = s["suite"].as_str().unwrap();
        // Each suite ran every one of its files and passed at least as many
        // tests as it has files (7.0's cluster unit tests are 5 in 4
        // files), and every failure is a documented one.
        let total = s["files_total"].as_u64().unwrap();
        let files = s["files"].as_array().unwrap();
        assert!(total >= 3, "{name}: {s}");
        // (8.0 adds its large-memory files after the count.)
        assert!(files.len() as u64 >= total, "{name}: {s}");
        assert!(s["passed"].as_u64().unwrap() >= total, "{name}: {s}");
        // Near what the last full run passed, with no more than a few more
        // skips: a run that skipped most of a suite does not pass.
        let (last_ok, last_skipped) = last_full_run(line, name);
        let passed = s["passed"].as_u64().unwrap();
        let skipped = s["skipped"].as_u64().unwrap();
        assert!(
            passed as f64 >= MIN_SHARE_OF_LAST_RUN * last_ok as f64,
            "{name}: {passed} passed, the last full run {last_ok} (README)"
        );
        assert!(
            skipped <= last_skipped + MORE_SKIPS_ALLOWED,
            "{name}: {skipped} skipped, the last full run {last_skipped} (README)"
        );
        assert!(
            s["aborted"].is_null(),
            "{name} stopped early: {}",
            s["aborted"]
        );
        for f in s["failures"].as_array().unwrap() {
            assert!(
                f["expected"].is_string(),
                "{name}: {} ({}) failed:\n{}",
                f["test"],
                f["file"],
                f["text"]
            );
        }
    }
    // The TLS suite ran over TLS: its tree holds the certificates it made.
    assert!(repo_root()
        .join("target/test-upstream")
        .join(line)
        .join("tls/tests/tls/ca.crt")
        .is_file());
    assert!(out.status.success(), "test-upstream failed:\n{stdout}");
    assert_eq!(report["passed"], true);
}

#[test]
fn cells_are_read_with_thousands_separators_and_in_any_order() {
    assert_eq!(count("2,160 ok, 16 skipped (895 s)", "ok"), 2160);
    assert_eq!(count("2,160 ok, 16 skipped (895 s)", "skipped"), 16);
    assert_eq!(count("5 ok (4 files, 3 s)", "ok"), 5);
    assert_eq!(count("5 ok (4 files, 3 s)", "skipped"), 0);
    assert_eq!(
        count("3584 ok, 0 failed, 22 skipped (895 s)", "skipped"),
        22
    );
}

#[test]
fn the_last_full_run_is_read_from_the_readme() {
    assert_eq!(last_full_run("7.0", "sample"), (1908, 12));
    assert_eq!(last_full_run("8.0", "moduleapi"), (528, 1));
    assert_eq!(last_full_run("7.0", "cluster-unit"), (5, 0));
    assert_eq!(last_full_run("8.0", "tls"), (88, 0));
}

#[test]
fn upstream_suites_pass_on_the_7_0_release() {
    suites_pass("7.0");
}

#[test]
fn upstream_suites_pass_on_the_8_0_release() {
    suites_pass("8.0");
}
