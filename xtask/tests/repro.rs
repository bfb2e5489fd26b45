//! Bit-for-bit rebuilds: a second cold build from another copy of the
//! checkout, in another absolute path, with its own state folder (no shared
//! caches), another hostname, umask and TZ, gives the same release archives,
//! provenance and SHA256SUMS lines as the run's shared build, for each
//! target: the default, the static and the aarch64 one.

mod common;

use std::{fs, path::Path, process::Command};

use common::{copy_checkout, release, release_for, repo_root, scratch};

#[test]
fn a_second_cold_build_elsewhere_gives_identical_archives() {
    let root = scratch("repro-b");
    let checkout = root.join("some/other/deeper/path/checkout");
    copy_checkout(&repo_root(), &checkout);
    let state = root.join("state");
    let out = root.join("dist");
    // The default target, then the static and the aarch64 one: each a cold
    // build in the second state folder (their toolchain runtimes and OpenSSL
    // differ).
    rebuild_and_compare(
        &release("7.0"),
        &checkout,
        &state,
        &out,
        &["--redis", "7.0"],
    );
    for target in ["x86_64-linux-musl-static", "aarch64-linux-glibc2.17"] {
        rebuild_and_compare(
            &release_for(target),
            &checkout,
            &state,
            &out,
            &["--target", target],
        );
    }
}

/// Build `dist ARGS` cold from `checkout` with `state` into `out`, under
/// another hostname, umask and TZ, and compare with `a`, the run's build.
fn rebuild_and_compare(
    a: &common::Release,
    checkout: &Path,
    state: &Path,
    out: &Path,
    args: &[&str],
) {
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let uts = Command::new("unshare")
        .args(["--uts", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !uts {
        // The build still differs in path, state, umask and TZ; only the
        // hostname stays the same, and the run says so.
        common::skip(
            "repro_different_hostname",
            "`unshare --uts` fails here (needs root): both builds ran under one hostname",
        );
    }
    let mut cmd = if uts {
        let mut c = Command::new("unshare");
        c.args([
            "--uts",
            "sh",
            "-c",
            "hostname repro-other-host && umask 077 && exec \"$@\"",
            "sh",
            xtask,
        ]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", "umask 077 && exec \"$@\"", "sh", xtask]);
        c
    };
    cmd.current_dir(checkout)
        .env("TZ", "Pacific/Kiritimati")
        .env_remove("PORTABLE_REDIS_STATE")
        .args(["--state"])
        .arg(state)
        .arg("dist")
        .args(args)
        .arg("--out")
        .arg(out);
    let result = cmd.output().unwrap();
    let log = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "second build ({}) failed:\n{log}",
        args.join(" ")
    );
    let release = a
        .tarball
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .to_string();
    let record = xtask::dist::RunRecord::load_release(state, &release).unwrap();
    assert!(
        record
            .steps_in(xtask::run::StepState::Cached)
            .next()
            .is_none(),
        "the second build must be cold: {record:?}"
    );

    for name in [
        a.tarball.file_name().unwrap().to_owned(),
        debug_name(&a.tarball).into(),
    ] {
        let (pa, pb) = (a.out.join(&name), out.join(&name));
        let (ba, bb) = (fs::read(&pa).unwrap(), fs::read(&pb).unwrap());
        if ba != bb {
            panic!(
                "{} differs between the two builds: {}",
                name.to_string_lossy(),
                xtask::repro::first_difference(&pa, &pb).unwrap()
            );
        }
    }
    // The provenance holds nothing of the machine either.
    let provenance = format!("{release}.intoto.json");
    let (pa, pb) = (a.out.join(&provenance), out.join(&provenance));
    if fs::read(&pa).unwrap() != fs::read(&pb).unwrap() {
        panic!(
            "{provenance} differs between the two builds: {}",
            xtask::repro::first_different_line(&pa, &pb).unwrap()
        );
    }
    // Nor the sums of the release's files.
    let sums = |dir: &Path| -> Vec<String> {
        fs::read_to_string(dir.join("SHA256SUMS"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(&release))
            .map(String::from)
            .collect()
    };
    assert_eq!(sums(&a.out), sums(out), "SHA256SUMS lines of {release}");
}

fn debug_name(tarball: &Path) -> String {
    tarball
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".tar.gz", "-debug.tar.gz")
}
