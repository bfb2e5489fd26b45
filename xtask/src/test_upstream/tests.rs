use super::*;

const RUNTEST: &str = "\u{1b}[1;37mTesting unit/type/list\u{1b}[0m\n\
[ok]: LPOS basic usage (2 ms)\n\
[ok]: LPOS RANK (1 ms)\n\
[skip]: large memory flag\n\
[err]: Active defrag eval scripts in tests/unit/memefficiency.tcl\n\
Expected 1048576 < 1000000 (context: type eval line 5 cmd {assert {$max_latency <= 30}} proc ::test)\n\
[ok]: Active defrag big keys (7 ms)\n\
[1/3 done]: unit/type/list (12 seconds)\n\
[2/3 done]: unit/memefficiency (70 seconds)\n\
[3/3 done]: unit/auth (1 seconds)\n";

#[test]
fn reads_runtest_output_per_file() {
    let r = parse_runtest(RUNTEST, Suite::Unit);
    assert_eq!(r.passed, 3);
    assert_eq!(r.skipped, 1);
    assert_eq!(r.failures.len(), 1);
    let f = &r.failures[0];
    assert_eq!(f.test, "Active defrag eval scripts");
    assert_eq!(f.file, "unit/memefficiency");
    assert!(f.text.contains("max_latency"), "{}", f.text);
    let files: Vec<(&str, &str)> = r
        .files
        .iter()
        .map(|f| (f.file.as_str(), f.status.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("unit/auth", "ok"),
            ("unit/memefficiency", "failed"),
            ("unit/type/list", "ok")
        ]
    );
    assert_eq!(r.files[2].seconds, Some(12));
    assert_eq!(r.files_total, Some(3));
    assert!(r.aborted.is_none());
}

#[test]
fn an_exception_stops_the_suite_and_says_how_far_it_got() {
    let out = "[ok]: a (1 ms)\n[1/84 done]: unit/printver (0 seconds)\n\
                   [exception]: Executing test client: ERR CONFIG SET failed\n";
    let r = parse_runtest(out, Suite::Unit);
    assert!(!r.passed_all());
    assert_eq!(r.files_total, Some(84));
    let text = SuiteLines(&r).to_string();
    assert!(
        text.contains("ABORTED after 1 of 84 files: Executing"),
        "{text}"
    );
}

#[test]
fn reads_the_cluster_suite() {
    let out = "Testing unit: 00-base.tcl\n10:01:02> (init) Restart killed instances: OK\n\
10:01:03> Cluster nodes are reachable: OK\nTesting unit: 02-failover.tcl\n\
10:02:00> Wait for failover: FAILED: No failover detected\n(Jumping to next unit after error)\n";
    let r = parse_cluster(out);
    assert_eq!(r.passed, 2);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].file, "02-failover");
    assert_eq!(r.failures[0].test, "Wait for failover");
    assert_eq!(r.files[1].status, "failed");
}

#[test]
fn exceptions_match_line_file_and_test() {
    let e: Exceptions = toml::from_str(
        r#"
            [[exception]]
            lines = ["7.0"]
            file = "unit/memefficiency"
            test = "Active defrag eval scripts"
            reason = "latency"
            "#,
    )
    .unwrap();
    assert!(e
        .find("7.0", "unit/memefficiency", "Active defrag eval scripts")
        .is_some());
    assert!(e
        .find("8.0", "unit/memefficiency", "Active defrag eval scripts")
        .is_none());
    assert!(e
        .find("7.0", "unit/memefficiency", "Active defrag big keys")
        .is_none());
}

#[test]
fn the_repository_exceptions_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let e = Exceptions::load(root).unwrap();
    for x in &e.exceptions {
        assert!(!x.reason.trim().is_empty(), "{x:?}");
    }
}

#[test]
fn suites_run_on_their_own_ports() {
    let d = tempfile::tempdir().unwrap();
    let a = Suite::Sample.command(d.path(), 21_000, 2, &[]).unwrap();
    assert!(a.windows(2).any(|w| w == ["--baseport", "21000"]));
    assert!(a.windows(2).any(|w| w == ["--single", "unit/type/list"]));
    let t = Suite::Tls.command(d.path(), 23_000, 2, &[]).unwrap();
    assert!(t.contains(&"--tls".to_string()));
}

#[test]
fn the_unit_suite_leaves_the_cluster_files_to_their_suite() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("tests/unit/cluster")).unwrap();
    for f in ["links.tcl", "packet.tcl"] {
        fs::write(d.path().join("tests/unit/cluster").join(f), "").unwrap();
    }
    let files = cluster_unit_files(d.path()).unwrap();
    assert_eq!(files, ["unit/cluster/links", "unit/cluster/packet"]);
    let c = Suite::ClusterUnit
        .command(d.path(), 21_000, 2, &[])
        .unwrap();
    assert!(c
        .windows(2)
        .any(|w| w == ["--single", "unit/cluster/packet"]));
    let u = Suite::Unit.command(d.path(), 21_000, 2, &files).unwrap();
    assert!(u
        .windows(2)
        .any(|w| w == ["--skipunit", "unit/cluster/links"]));
    assert!(!u.contains(&"--single".to_string()));
}

/// `dist --check-upstream` refuses, before building, a target whose
/// programs this machine cannot start itself.
#[test]
fn the_suites_run_only_the_machines_own_programs() {
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let pins = crate::pins::Pins::load(checkout).unwrap();
    for t in &pins.targets {
        let verdict = check_runs_here(t);
        if t.arch() == std::env::consts::ARCH {
            assert!(verdict.is_ok(), "{}: {verdict:?}", t.name);
        } else {
            let err = verdict.unwrap_err().to_string();
            assert!(err.contains("test-upstream --bin DIR"), "{err}");
        }
    }
    assert!(pins
        .targets
        .iter()
        .any(|t| t.arch() != std::env::consts::ARCH));
}
