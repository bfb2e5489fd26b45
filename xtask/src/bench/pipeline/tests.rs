use super::*;
use crate::pins::Pins;

fn pin(name: &str, version: &str) -> SourcePin {
    let zeros = "0".repeat(64);
    let text = format!(
        "[toolchain]\nzig-version = \"0.17.1\"\nwheel = \"w\"\nwheel-sha256 = \"00\"\n\
             cpu = \"baseline\"\nopt = \"-O2\"\n\
             [[target]]\nname = \"t\"\nzig = \"x86_64-linux-gnu.2.11\"\npolicy = \"p\"\n\
             openssl = \"linux-x86_64\"\njemalloc = \"\"\nruns-on = \"x\"\n\
             [openssl]\nname = \"{name}\"\nversion = \"{version}\"\nreleased = \"2026-01-27\"\n\
             tree = \"sha256:{zeros}\"\narchives = []\nlicense = \"x\"\n\
             [[redis]]\nname = \"redis\"\nversion = \"7.0.15\"\nreleased = \"2024-01-09\"\n\
             tree = \"sha256:{zeros}\"\narchives = []\nlicense = \"x\"\n"
    );
    Pins::parse(&text).unwrap().openssl
}

/// The default target of vendor/sources.toml.
fn target() -> crate::pins::Target {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Pins::load(&root).unwrap().targets[0].clone()
}

#[test]
fn quoting_keeps_each_argument_one_word() {
    assert_eq!(sh_quote("BUILD_TLS=yes"), "BUILD_TLS=yes");
    assert_eq!(
        sh_quote("JEMALLOC_CONFIGURE_OPTS=--a --b"),
        "'JEMALLOC_CONFIGURE_OPTS=--a --b'"
    );
    assert_eq!(sh_quote("it's"), r"'it'\''s'");
    assert_eq!(sh_quote(""), "''");
    assert_eq!(sh_quote("$HOME"), "'$HOME'");
}

#[test]
fn the_script_runs_what_the_build_runs_with_the_same_flags() {
    let flags = BuildFlags::new(&target(), &[], SandboxKind::Bwrap, 1_704_758_400, 2);
    let s = script_text(&flags, &pin("openssl", "3.5.5"), &pin("redis", "7.0.15"));
    assert!(s.starts_with("#!/bin/sh\n"));
    assert!(s.contains("set -eu\n"));
    let configure = s.lines().find(|l| l.contains("./Configure")).unwrap();
    for a in &flags.openssl_configure {
        assert!(configure.contains(&sh_quote(a)), "{a} in {configure}");
    }
    for a in &flags.openssl_cflags {
        assert!(configure.contains(a.as_str()), "{a} in {configure}");
    }
    assert!(configure.contains("\"-ffile-prefix-map=$src=openssl-3.5.5\""));
    assert!(s.contains("    make -j2 build_libs\n    make install_dev\n"));
    let make = s
        .split("redis)")
        .nth(1)
        .unwrap()
        .split(";;")
        .next()
        .unwrap();
    assert!(make.contains("patch -p1"));
    assert!(make.contains(&format!("CFLAGS='{}'", flags.cflags.join(" "))));
    assert!(make.contains(&format!("LDFLAGS='{}'", flags.ldflags.join(" "))));
    assert!(make.contains("make -j2 "));
    for a in flags.make_variables() {
        assert!(make.contains(&sh_quote(a)), "{a} in {make}");
    }
    assert!(make.contains("\"LIBCRYPTO_LIBS=$prefix/lib/libcrypto.a -ldl -pthread\""));
    assert!(make.contains(&sh_quote(build::LINK_MAP_RECIPE)));
}

#[test]
fn the_script_is_valid_sh() {
    let flags = BuildFlags::new(&target(), &[], SandboxKind::Bwrap, 0, 2);
    let s = script_text(&flags, &pin("openssl", "3.5.5"), &pin("redis", "7.0.15"));
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("build.sh");
    fs::write(&p, s).unwrap();
    let out = Command::new("sh").arg("-n").arg(&p).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_scratch_checkout_changes_one_patch_and_nothing_in_the_source() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("vendor")).unwrap();
    fs::write(r.join("vendor/sources.toml"), "pins").unwrap();
    fs::create_dir_all(r.join("policy")).unwrap();
    fs::write(r.join("policy/x86_64-linux-gnu.2.11.toml"), "policy").unwrap();
    fs::create_dir_all(r.join("patches/redis/7.0")).unwrap();
    let patch = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
    fs::write(r.join("patches/redis/7.0/0001-x.patch"), patch).unwrap();
    fs::write(r.join("patches/redis/7.0/series"), "# c\n0001-x.patch\n").unwrap();
    fs::create_dir_all(r.join("xtask")).unwrap();
    fs::write(r.join("xtask/Cargo.toml"), "[package]").unwrap();
    let mut p = pin("redis", "7.0.15");
    p.patches = Some("patches/redis/7.0".into());
    let dest = root.path().join("scratch");
    let touched = scratch_checkout(r, &dest, &p).unwrap();
    assert_eq!(touched, "patches/redis/7.0/0001-x.patch");
    let changed = fs::read_to_string(dest.join(&touched)).unwrap();
    assert!(changed.ends_with(patch) && changed.len() > patch.len());
    assert_eq!(
        fs::read_to_string(r.join("patches/redis/7.0/0001-x.patch")).unwrap(),
        patch,
        "the checkout itself is unchanged"
    );
    assert!(dest.join("vendor/sources.toml").is_file());
    assert!(dest.join("policy/x86_64-linux-gnu.2.11.toml").is_file());
    assert!(dest.join("xtask/Cargo.toml").is_file());
}
