//! Redis's own test suite on the packaged binaries of each line: the suites
//! CI has time for (TLS, the module API, the cluster unit tests and a fixed
//! sample of the rest). `cargo xtask test-upstream` (and `dist
//! --check-upstream`) runs all of it.

mod common;

use std::{fs, sync::Mutex};

use common::{release, repo_root, xtask};

/// The suites CI runs, about 10 minutes a line on 2 cores.
const SUITES: &str = "sample,tls,moduleapi,cluster-unit";

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
fn upstream_suites_pass_on_the_7_0_release() {
    suites_pass("7.0");
}

#[test]
fn upstream_suites_pass_on_the_8_0_release() {
    suites_pass("8.0");
}
