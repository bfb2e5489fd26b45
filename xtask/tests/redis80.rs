//! The Redis 8.0 line on the real sources: `cargo xtask dist --redis 8.0`
//! makes a 8.0.6 release whose packaged binaries pass verify (no C++ runtime
//! or libgcc_s among their libraries) and answer PING over TLS and TCP.

mod common;

use std::{fs, time::Duration};

use common::{release, scratch, verify_packaged};
use xtask::server::{command, free_port, loopback_args, Server};

const LINE: &str = "8.0";

#[test]
fn release_is_named_for_8_0_6_and_records_its_series() {
    let r = release(LINE);
    assert_eq!(
        r.tarball.file_name().unwrap().to_string_lossy(),
        "portable-redis-8.0.6-x86_64-linux-glibc2.11.tar.gz"
    );
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(r.root.join("BUILDINFO.json")).unwrap()).unwrap();
    // 2026-02-23, from the 8.0.6 release notes.
    assert_eq!(info["source_date_epoch"], 1_771_804_800u64);
    // Redis's patches: our series, then Debian's CVE fixes for 8.0.6.
    let series: Vec<&str> = info["patches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["component"] == "redis")
        .map(|p| p["series"].as_str().unwrap())
        .collect();
    let ours = series
        .iter()
        .take_while(|s| **s == "patches/redis/8.0")
        .count();
    assert!(ours >= 5, "{series:?}");
    assert!(
        series[ours..]
            .iter()
            .all(|s| *s == "redis_8.0.6-3.debian.tar.xz")
            && series.len() - ours == 7,
        "{series:?}"
    );
    for licence in [
        "LICENSES/redis-8.0.6/LICENSE.txt",
        "LICENSES/redis-8.0.6/deps/fast_float/fast_float.h.LICENSE",
        "LICENSES/openssl-3.5.7/LICENSE.txt",
    ] {
        assert!(r.root.join(licence).is_file(), "{licence} missing");
    }
    let fast_float = fs::read_to_string(
        r.root
            .join("LICENSES/redis-8.0.6/deps/fast_float/fast_float.h.LICENSE"),
    )
    .unwrap();
    assert!(fast_float.contains("MIT License"), "{fast_float}");
    assert!(
        !fast_float.contains("#ifndef"),
        "only the comment: {fast_float}"
    );
}

#[test]
fn the_build_reads_the_lines_committed_profile_and_it_fits_the_sources() {
    common::assert_reads_its_profile(&release(LINE), "redis-8.0.6");
}

#[test]
fn packaged_binaries_pass_verify_without_a_cxx_runtime() {
    let r = release(LINE);
    let (code, report) = verify_packaged(&r);
    assert_eq!(code, Some(0), "{report:#}");
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    for f in files {
        assert_eq!(f["violations"].as_array().unwrap().len(), 0, "{f}");
        let needed: Vec<&str> = f["needed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(needed.contains(&"libc.so.6"), "{needed:?}");
        for forbidden in ["libstdc++", "libc++", "libgcc_s", "libssl", "libcrypto"] {
            assert!(
                !needed.iter().any(|n| n.starts_with(forbidden)),
                "{forbidden} in {needed:?}"
            );
        }
    }
}

#[test]
fn fast_float_parses_scores_in_the_packaged_server() {
    let r = release(LINE);
    // The C++ code and what it needs of its runtime are inside the binary:
    // nothing C++ is left for the dynamic loader (glibc's own __cxa_atexit
    // aside).
    let server = fs::read(r.bin.join("redis-server")).unwrap();
    let imported = undefined_dynamic_symbols(&server);
    let cxx: Vec<&String> = imported
        .iter()
        .filter(|s| {
            s.starts_with("_Z")
                || s.starts_with("_Unwind")
                || s.starts_with("__gxx_")
                || (s.starts_with("__cxa_")
                    && !matches!(s.as_str(), "__cxa_atexit" | "__cxa_finalize"))
        })
        .collect();
    assert!(cxx.is_empty(), "{cxx:?}");
    assert!(imported.iter().any(|s| s == "memcpy"), "the list is real");
    // ZRANGEBYSCORE parses its bounds with fast_float_strtod (t_zset.c),
    // built to accept a leading `+` as strtod does.
    let port = free_port().unwrap();
    let args = loopback_args(port, &[]);
    let mut s = Server::spawn(
        &r.bin.join("redis-server"),
        &scratch("fast-float-8.0"),
        port,
        &args,
    )
    .unwrap();
    s.wait_ready(Duration::from_secs(20)).unwrap();
    let t = Duration::from_secs(5);
    assert_eq!(
        command(port, &["ZADD", "z", "1500", "a", "2500", "b"], t).unwrap(),
        "2"
    );
    assert_eq!(
        command(port, &["ZRANGEBYSCORE", "z", "(1.4995e3", "+1.5e3"], t).unwrap(),
        "a"
    );
    assert_eq!(
        command(port, &["ZRANGEBYSCORE", "z", "-inf", "+inf"], t).unwrap(),
        "a\nb"
    );
    assert!(command(port, &["ZRANGEBYSCORE", "z", "1x", "2"], t)
        .unwrap()
        .starts_with("ERR"));

    // BITCOUNT (POPCNT) and dense HyperLogLogs (AVX2) take the CPU-feature
    // paths that 0004-cpu-features-from-cpuid.patch decides with CPUID.
    let text = "a".repeat(4096); // 'a' = 0x61: three bits per byte
    assert_eq!(command(port, &["SET", "bits", &text], t).unwrap(), "OK");
    assert_eq!(command(port, &["BITCOUNT", "bits"], t).unwrap(), "12288");
    for (key, from) in [("h1", 0), ("h2", 2500)] {
        let names: Vec<String> = (from..from + 5000).map(|i| format!("e{i}")).collect();
        let mut args = vec!["PFADD", key];
        args.extend(names.iter().map(String::as_str));
        command(port, &args, t).unwrap();
    }
    assert_eq!(
        command(port, &["PFDEBUG", "ENCODING", "h1"], t).unwrap(),
        "dense"
    );
    let union: f64 = command(port, &["PFCOUNT", "h1", "h2"], t)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (union - 7500.0).abs() < 7500.0 * 0.03,
        "PFCOUNT h1 h2 = {union}"
    );
    s.kill().unwrap();
}

fn undefined_dynamic_symbols(elf: &[u8]) -> Vec<String> {
    use object::{Object, ObjectSymbol};
    let file = object::File::parse(elf).unwrap();
    file.dynamic_symbols()
        .filter(|s| s.is_undefined())
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect()
}

#[test]
fn packaged_server_answers_ping_over_tls_and_tcp() {
    let r = release(LINE);
    let report = xtask::smoke::smoke(
        &xtask::emulator::Runner::native(),
        &r.bin,
        &scratch("smoke-8.0"),
    )
    .unwrap();
    assert_eq!(report.tls_ping, "PONG");
    assert_eq!(report.plain_ping, "PONG");
    assert_eq!(report.server_version, "8.0.6");
}
