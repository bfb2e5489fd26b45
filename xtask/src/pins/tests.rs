use super::*;

#[test]
fn dates_become_epoch_seconds() {
    assert_eq!(parse_date("1970-01-01").unwrap(), 0);
    assert_eq!(parse_date("2024-01-09").unwrap(), 1_704_758_400);
    assert_eq!(parse_date("2000-03-01").unwrap(), 951_868_800);
    assert!(parse_date("2024-13-01").is_err());
    assert!(parse_date("yesterday").is_err());
}

/// The architectures a target or patch may name are those the checker reads.
#[test]
fn the_architectures_are_the_checkers() {
    let machines: Vec<&str> = elfcheck::elf::MACHINES.iter().map(|(_, m)| *m).collect();
    assert_eq!(ARCHES.to_vec(), machines);
}

#[test]
fn the_repository_pins_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let pins = Pins::load(root).unwrap();
    assert_eq!(pins.redis(None).unwrap().name, "redis");
    assert!(pins.redis(Some("6.2")).is_err());
}

#[test]
fn a_queue_patch_may_leave_out_tests_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = fs::read_to_string(root.join(PINS_FILE)).unwrap();
    let entry = |without: &str| {
        text.replacen(
            "    \"CVE-2026-81934.patch\",",
            &format!(
                "    {{ name = \"CVE-2026-81934.patch\", without = [\"{without}\"], why = \"w\" }},"
            ),
            1,
        )
    };
    let pins = Pins::parse(&entry("tests/integration/replication.tcl")).unwrap();
    let sec = pins.redis(Some("7.0")).unwrap().security.clone().unwrap();
    assert!(sec
        .patches
        .iter()
        .any(|p| p.without() == ["tests/integration/replication.tcl"]));
    let err = format!(
        "{:#}",
        Pins::parse(&entry("src/replication.c")).unwrap_err()
    );
    assert!(err.contains("only files under tests/"), "{err}");
    let bad = text.replacen("    \"CVE-2026-81934.patch\",", "    { file = \"x\" },", 1);
    let err = format!("{:#}", Pins::parse(&bad).unwrap_err());
    assert!(err.contains("a patch file name, or"), "{err}");
}

#[test]
fn target_names_are_unique_and_safe_in_file_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join(PINS_FILE)).unwrap();
    let first = text.find("[[target]]").unwrap();
    let end = text[first..].find("\n\n").unwrap() + first;
    let entry = &text[first..end];
    let twice = text.replacen(entry, &format!("{entry}\n\n{entry}"), 1);
    let err = format!("{:#}", Pins::parse(&twice).unwrap_err());
    assert!(err.contains("is listed twice"), "{err}");
    let all = text.replacen("name = \"x86_64-linux-glibc2.11\"", "name = \"all\"", 1);
    let err = format!("{:#}", Pins::parse(&all).unwrap_err());
    assert!(err.contains("means every target"), "{err}");
    let slash = text.replacen("name = \"x86_64-linux-glibc2.11\"", "name = \"x86/64\"", 1);
    let err = format!("{:#}", Pins::parse(&slash).unwrap_err());
    assert!(err.contains("letters, digits"), "{err}");
    let riscv = text.replacen(
        "zig = \"x86_64-linux-gnu.2.11\"",
        "zig = \"riscv64-linux-gnu\"",
        1,
    );
    let err = format!("{:#}", Pins::parse(&riscv).unwrap_err());
    assert!(err.contains("names no known architecture"), "{err}");
    let pins = Pins::parse(&text).unwrap();
    assert_eq!(pins.targets[0].facets(), ["x86_64", "glibc"]);
    // The default needs no make variable, zig's own runtime, no emulator.
    let default = &pins.targets[0];
    assert!(default.make.is_empty() && default.emulator.is_none());
    assert_eq!(default.compiler_rt, CompilerRt::Zig);
    let arm = pins.target(Some("aarch64-linux-glibc2.17")).unwrap();
    assert_eq!(arm.facets(), ["aarch64", "glibc"]);
    assert_eq!(arm.make, ["uname_M=aarch64"]);
    assert_eq!(arm.compiler_rt, CompilerRt::WithoutLibc);
    assert!(
        arm.jemalloc.contains("--with-lg-page=16"),
        "{}",
        arm.jemalloc
    );
    let emulator = arm.emulator.as_ref().unwrap();
    assert_eq!(emulator.program, "qemu-aarch64");
    assert_eq!(emulator.debian_arch, "arm64");
    let typo = text.replacen(
        "debian-arch = \"arm64\"",
        "debian-arch = \"arm64\", root = \"/\"",
        1,
    );
    let err = format!("{:#}", Pins::parse(&typo).unwrap_err());
    assert!(err.contains("root"), "{err}");
    for (file, target) in [
        (
            "portable-redis-7.0.15-x86_64-linux-glibc2.11.tar.gz",
            "x86_64-linux-glibc2.11",
        ),
        (
            "portable-redis-8.0.6-x86_64-linux-musl-static.intoto.json",
            "x86_64-linux-musl-static",
        ),
        (
            "portable-redis-8.0.6-x86_64-linux-musl-static-debug.tar.gz",
            "x86_64-linux-musl-static",
        ),
    ] {
        assert_eq!(pins.target_of_release(file).unwrap().name, target);
    }
    let e = format!(
        "{:#}",
        pins.target_of_release("portable-redis-7.0.15-riscv64.tar.gz")
            .unwrap_err()
    );
    assert!(e.contains("names no target"), "{e}");
}

#[test]
fn unknown_keys_are_errors() {
    let text = r#"
        [toolchain]
        zig-version = "0.17.1"
        wheel = "w.whl"
        wheel-sha256 = "00"
        cpu = "baseline"
        opt = "-O2"
        colour = "blue"
        [openssl]
        name = "openssl"
        version = "3"
        released = "2024-01-01"
        license = "Apache-2.0"
        tree = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        [[redis]]
        name = "redis"
        version = "7"
        released = "2024-01-01"
        license = "BSD-3-Clause"
        tree = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
    "#;
    let err = format!("{:#}", Pins::parse(text).unwrap_err());
    assert!(err.contains("colour"), "{err}");
}
