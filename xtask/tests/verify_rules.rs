//! verify's rules, one fixture per rule: tiny ELF files compiled here with
//! the host `cc` (GNU ld) and the pinned zig for several glibc targets, fake
//! libraries made with `-Wl,--version-script`, and fake host folders for
//! `--against`. Each test asserts the exact finding.

mod common;
#[path = "support/jsonschema.rs"]
mod jsonschema;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use xtask::{
    pins::Pins,
    project::Project,
    toolchain::{self, Toolchain},
    verify::{self, Extras, FileReport, GlibcAbi, Policy, VerifyReport},
};

use common::{repo_root, xtask};

/// The pinned zig (downloaded into the state folder when missing).
fn zig() -> &'static Toolchain {
    static TC: OnceLock<Toolchain> = OnceLock::new();
    TC.get_or_init(|| {
        let project = Project::discover(None).unwrap();
        let pins = Pins::load(&project.root).unwrap();
        toolchain::provision(&project, &pins.toolchain, pins.target(None).unwrap(), None).unwrap()
    })
}

/// A fresh folder for one test's fixtures.
fn fixture_dir(name: &str) -> PathBuf {
    let d = repo_root().join("target/verify-fixtures").join(name);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cc ARGS` in `dir` (host gcc and GNU ld).
fn cc(dir: &Path, args: &[&str]) -> String {
    run(Command::new("cc").current_dir(dir).args(args))
}

/// `zig cc -target x86_64-linux-gnu.GLIBC ARGS` in `dir`, zig's cache kept
/// between runs below target/.
fn zig_cc(dir: &Path, glibc: &str, args: &[&str]) -> String {
    zig_cc_for(dir, &format!("x86_64-linux-gnu.{glibc}"), args)
}

/// `zig cc -target TARGET ARGS` in `dir`, with the fixtures' own zig cache.
fn zig_cc_for(dir: &Path, target: &str, args: &[&str]) -> String {
    let cache = repo_root().join("target/verify-fixtures/.zig-cache");
    run(Command::new(zig().zig())
        .current_dir(dir)
        .env("ZIG_GLOBAL_CACHE_DIR", &cache)
        .env("ZIG_LOCAL_CACHE_DIR", &cache)
        .args(["cc", "-target", target])
        .args(args))
}

/// Flags of a release build: PIE, full RELRO, NX stack, stack protector, fortify.
const HARDENED: &[&str] = &[
    "-O2",
    "-D_FORTIFY_SOURCE=2",
    "-fPIE",
    "-pie",
    "-fstack-protector-all",
    "-Wl,-z,relro,-z,now",
    "-Wl,-z,noexecstack",
];

/// A small program that uses memcpy, fortified string functions and stdio.
const PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) void copy(char *to, const char *from, size_t n) {
    memcpy(to, from, n);
}
int main(int argc, char **argv) {
    char buf[64];
    copy(buf, argv[0], (size_t)argc);
    strncpy(buf, argv[0], sizeof buf - 1);
    buf[63] = 0;
    printf("%s %d\n", buf, argc);
    return 0;
}
"#;

/// Build PROGRAM (or `source`) with zig for `glibc`, hardened, plus `extra`.
fn zig_program(dir: &Path, name: &str, glibc: &str, source: &str, extra: &[&str]) -> PathBuf {
    fs::write(dir.join(format!("{name}.c")), source).unwrap();
    let out = format!("{name}.bin");
    let mut args: Vec<&str> = HARDENED.to_vec();
    args.extend(extra);
    let src = format!("{name}.c");
    args.extend(["-o", &out, &src]);
    zig_cc(dir, glibc, &args);
    dir.join(out)
}

/// Build `source` with the host cc, plus `extra`.
fn cc_program(dir: &Path, name: &str, source: &str, extra: &[&str]) -> PathBuf {
    fs::write(dir.join(format!("{name}.c")), source).unwrap();
    let out = format!("{name}.bin");
    let src = format!("{name}.c");
    let mut args: Vec<&str> = vec!["-O2", "-o", &out, &src];
    args.extend(extra);
    cc(dir, &args);
    dir.join(out)
}

/// A shared library `soname` in `dir` defining `symbols` as (name, version);
/// with any version given, a version script declares the versions in order
/// (`versions`, oldest first, may add versions that define nothing else).
fn fake_lib(
    dir: &Path,
    soname: &str,
    symbols: &[(&str, Option<&str>)],
    versions: &[&str],
) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let mut asm = String::from(".text\n");
    for (name, _) in symbols {
        asm.push_str(&format!(
            ".globl {name}\n.type {name},@function\n{name}:\n ret\n"
        ));
    }
    let stem = soname.replace('.', "_");
    fs::write(dir.join(format!("{stem}.s")), asm).unwrap();
    let mut args = vec![
        "-shared".to_string(),
        "-nostdlib".into(),
        "-o".into(),
        soname.into(),
        format!("-Wl,-soname,{soname}"),
        format!("{stem}.s"),
    ];
    let mut all: Vec<&str> = versions.to_vec();
    for (_, v) in symbols {
        if let Some(v) = v {
            if !all.contains(v) {
                all.push(v);
            }
        }
    }
    if !all.is_empty() {
        let mut script = String::new();
        let mut previous: Option<&str> = None;
        for (i, ver) in all.iter().enumerate() {
            let names: Vec<&str> = symbols
                .iter()
                .filter(|(_, v)| *v == Some(*ver))
                .map(|(n, _)| *n)
                .collect();
            script.push_str(&format!("{ver} {{ global: "));
            for n in &names {
                script.push_str(&format!("{n}; "));
            }
            if i == 0 {
                script.push_str("local: *; ");
            }
            script.push('}');
            if let Some(p) = previous {
                script.push_str(&format!(" {p}"));
            }
            script.push_str(";\n");
            previous = Some(ver);
        }
        fs::write(dir.join(format!("{stem}.ver")), script).unwrap();
        args.push(format!("-Wl,--version-script={stem}.ver"));
    }
    run(Command::new("cc").current_dir(dir).args(&args));
    dir.join(soname)
}

/// A program without crt or libc (`_start` only), linked against `libs`
/// (one of which must define `__stack_chk_fail`: every function has a canary).
fn bare_program(dir: &Path, name: &str, body: &str, libs: &[&Path], extra: &[&str]) -> PathBuf {
    let source = format!(
        "{body}\n__attribute__((noinline)) static int work(void) {{ volatile char pad[32]; \
         pad[0] = 1; run(); return pad[0]; }}\nvoid _start(void) {{ work(); __builtin_trap(); }}\n"
    );
    fs::write(dir.join(format!("{name}.c")), source).unwrap();
    let out = format!("{name}.bin");
    let src = format!("{name}.c");
    let mut args: Vec<String> = [
        "-O2",
        "-nostdlib",
        "-fPIE",
        "-pie",
        "-fstack-protector-all",
        "-Wl,-z,relro,-z,now",
        "-Wl,-z,noexecstack",
        "-o",
        &out,
        &src,
    ]
    .map(String::from)
    .to_vec();
    args.extend(libs.iter().map(|l| l.display().to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    run(Command::new("cc").current_dir(dir).args(&args));
    dir.join(out)
}

/// The default target's policy, policy/x86_64-linux-gnu.2.11.toml.
fn policy() -> Policy {
    Policy::load(&common::default_policy()).unwrap()
}

/// What one check runs with.
struct Options {
    policy: Policy,
    abilists: PathBuf,
    hosts: Vec<PathBuf>,
    maps: Vec<PathBuf>,
}

fn options(policy: Policy) -> Options {
    Options {
        policy,
        abilists: zig().abilists(),
        hosts: Vec::new(),
        maps: Vec::new(),
    }
}

/// elfcheck's entry points as `cargo xtask verify` calls them.
fn verify_paths(paths: &[PathBuf], opts: &Options) -> anyhow::Result<VerifyReport> {
    let abi = GlibcAbi::load(&opts.abilists, &opts.policy)?;
    let extras = Extras {
        hosts: opts.hosts.clone(),
        maps: opts.maps.clone(),
    };
    verify::check(paths, &opts.policy, &abi, &extras)
}

fn check(path: &Path) -> FileReport {
    check_with(path, options(policy()))
}

fn check_with(path: &Path, opts: Options) -> FileReport {
    let mut report = verify_paths(&[path.to_path_buf()], &opts).unwrap();
    let f = report.files.remove(0);
    assert!(f.error.is_none(), "{:?}", f.error);
    f
}

type Finding = (
    &'static str,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// Every finding as (rule, library, symbol, version, message), message
/// without the binary's path.
fn findings(f: &FileReport) -> Vec<Finding> {
    f.violations
        .iter()
        .map(|v| {
            assert_eq!(v.binary, f.path);
            (
                v.rule.id(),
                v.library.clone(),
                v.symbol.clone(),
                v.version.clone(),
                v.message.replace(&f.path, "BIN"),
            )
        })
        .collect()
}

fn findings_of(f: &FileReport, rule: &str) -> Vec<Finding> {
    findings(f).into_iter().filter(|x| x.0 == rule).collect()
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

#[test]
fn a_hardened_zig_build_for_glibc_2_11_passes_every_rule() {
    let d = fixture_dir("clean");
    let bin = zig_program(&d, "clean", "2.11", PROGRAM, &[]);
    let f = check(&bin);
    assert_eq!(findings(&f), []);
    let h = f.hardening.as_ref().unwrap();
    assert!(h.pie && h.nx_stack && h.stack_protector && !h.textrel);
    assert_eq!(h.relro, "full");
    assert_eq!(h.fortify, ["__vprintf_chk"]);
    assert_eq!(f.needed, ["libc.so.6"]);
    assert!(f.imports >= 4, "{}", f.imports);
}

#[test]
fn abi_symbol_catches_clock_gettime_at_2_2_5_bound_to_libc() {
    let d = fixture_dir("abi-symbol");
    let body = "struct ts { long s, ns; };\nint clock_gettime(int, struct ts *);\n\
                static void run(void) { struct ts t; clock_gettime(1, &t); }";
    // The version name is old enough, but glibc 2.11's libc has no
    // clock_gettime: it lived in librt until 2.17.
    let libc = fake_lib(
        &d.join("c"),
        "libc.so.6",
        &[
            ("clock_gettime", Some("GLIBC_2.2.5")),
            ("__stack_chk_fail", Some("GLIBC_2.4")),
        ],
        &[],
    );
    let bad = bare_program(&d, "libc-bound", body, &[&libc], &[]);
    let f = check(&bad);
    assert_eq!(
        findings(&f),
        [(
            "abi-symbol",
            s("libc.so.6"),
            s("clock_gettime"),
            s("GLIBC_2.2.5"),
            "clock_gettime@GLIBC_2.2.5 is bound to libc.so.6, which does not export it in glibc 2.11 \
             (x86_64-linux-gnu): glibc 2.11 has clock_gettime@GLIBC_2.2.5 in librt.so.1"
                .to_string()
        )]
    );
    // The same reference bound to librt.so.1 is what glibc 2.11 has.
    let librt = fake_lib(
        &d.join("rt"),
        "librt.so.1",
        &[("clock_gettime", Some("GLIBC_2.2.5"))],
        &[],
    );
    let libc = fake_lib(
        &d.join("c2"),
        "libc.so.6",
        &[("__stack_chk_fail", Some("GLIBC_2.4"))],
        &[],
    );
    let good = bare_program(&d, "librt-bound", body, &[&librt, &libc], &[]);
    assert_eq!(findings(&check(&good)), []);
}

#[test]
fn unversioned_references_to_glibc_are_reported_and_weak_ones_listed_apart() {
    let d = fixture_dir("unversioned");
    let libc = fake_lib(
        &d.join("c"),
        "libc.so.6",
        &[("puts", None), ("no_such_glibc_fn", None)],
        &[],
    );
    let body = "int puts(const char *);\nvoid no_such_glibc_fn(void);\n\
                extern void __gmon_start__(void) __attribute__((weak));\n\
                static void run(void) { puts(\"x\"); no_such_glibc_fn(); if (__gmon_start__) __gmon_start__(); }";
    let bin = bare_program(&d, "unversioned", body, &[&libc], &["-fno-stack-protector"]);
    let f = check(&bin);
    let mut got = findings(&f);
    got.retain(|x| x.0 != "stack-protector");
    assert_eq!(
        got,
        [
            (
                "unversioned-symbol",
                s("libc.so.6"),
                s("puts"),
                None,
                "puts is referenced without a version and resolves to libc.so.6 (glibc 2.11 has it \
                 as puts@GLIBC_2.2.5): the loader binds whatever the host's default is"
                    .to_string()
            ),
            (
                "abi-symbol",
                None,
                s("no_such_glibc_fn"),
                None,
                "no_such_glibc_fn is referenced without a version and no needed glibc 2.11 library \
                 defines it: glibc 2.11 has no no_such_glibc_fn at all"
                    .to_string()
            ),
        ]
    );
    assert_eq!(f.weak_unversioned, ["__gmon_start__"]);
}

#[test]
fn glibc_version_catches_a_zig_build_for_a_newer_glibc() {
    let d = fixture_dir("glibc-version");
    let source = "#include <time.h>\n#include <stdio.h>\nint main(void) { struct timespec t; \
                  clock_gettime(CLOCK_MONOTONIC, &t); printf(\"%ld\\n\", (long)t.tv_sec); return 0; }";
    let bin = zig_program(&d, "clock", "2.17", source, &[]);
    let f = check(&bin);
    assert_eq!(
        findings(&f),
        [(
            "glibc-version",
            s("libc.so.6"),
            s("clock_gettime"),
            s("GLIBC_2.17"),
            "clock_gettime@GLIBC_2.17 from libc.so.6 is newer than GLIBC_2.11".to_string()
        )]
    );
    assert_eq!(f.highest_glibc(), Some("GLIBC_2.17"));
    // The same source for glibc 2.11 takes clock_gettime from librt.
    let old = zig_program(&d, "clock211", "2.11", source, &["-lrt"]);
    let f = check(&old);
    assert_eq!(findings(&f), []);
    assert!(
        f.needed.contains(&"librt.so.1".to_string()),
        "{:?}",
        f.needed
    );
}

#[test]
fn needs_on_the_dynamic_loader_are_checked_too() {
    let d = fixture_dir("ld-linux");
    // glibc 2.35 moved the rseq area's offset into ld.so.
    let source = "#include <sys/rseq.h>\n#include <stdio.h>\n\
                  int main(void) { printf(\"%ld\\n\", (long)__rseq_offset); return 0; }";
    let bin = cc_program(&d, "rseq", source, &[]);
    let f = check(&bin);
    assert_eq!(
        findings_of(&f, "glibc-version")
            .into_iter()
            .filter(|x| x.1.as_deref() == Some("ld-linux-x86-64.so.2"))
            .collect::<Vec<_>>(),
        [(
            "glibc-version",
            s("ld-linux-x86-64.so.2"),
            s("__rseq_offset"),
            s("GLIBC_2.35"),
            "__rseq_offset@GLIBC_2.35 from ld-linux-x86-64.so.2 is newer than GLIBC_2.11"
                .to_string()
        )]
    );
}

#[test]
fn version_names_glibc_private_and_unknown_prefixes_fail() {
    let d = fixture_dir("version-name");
    let libc = fake_lib(
        &d.join("c"),
        "libc.so.6",
        &[
            ("__libc_secret", Some("GLIBC_PRIVATE")),
            ("__stack_chk_fail", Some("GLIBC_2.4")),
        ],
        &[],
    );
    let cxx = fake_lib(
        &d.join("cxx"),
        "libstdc++.so.6",
        &[("cxx_thing", Some("GLIBCXX_3.4"))],
        &[],
    );
    let body = "void __libc_secret(void);\nvoid cxx_thing(void);\n\
                static void run(void) { __libc_secret(); cxx_thing(); }";
    let bin = bare_program(&d, "names", body, &[&libc, &cxx], &[]);
    let f = check(&bin);
    assert_eq!(
        findings(&f),
        [
            (
                "version-name",
                s("libstdc++.so.6"),
                None,
                s("GLIBCXX_3.4"),
                "needs GLIBCXX_3.4 from libstdc++.so.6: a version the policy does not know (only GLIBC_<number> is allowed)"
                    .to_string()
            ),
            (
                "version-name",
                s("libc.so.6"),
                None,
                s("GLIBC_PRIVATE"),
                "needs GLIBC_PRIVATE from libc.so.6: glibc's internal interface, different in every glibc build"
                    .to_string()
            ),
            (
                "needed-libraries",
                s("libstdc++.so.6"),
                None,
                None,
                "needs libstdc++.so.6, which is not one of libc.so.6, libm.so.6, libdl.so.2, libpthread.so.0, librt.so.1, ld-linux-x86-64.so.2"
                    .to_string()
            ),
        ]
    );
}

#[test]
fn a_shared_libssl_fails_the_static_openssl_proof() {
    let d = fixture_dir("static-openssl");
    let ssl = fake_lib(
        &d.join("ssl"),
        "libssl.so.3",
        &[
            ("SSL_CTX_new", Some("OPENSSL_3.0.0")),
            ("SSL_new", Some("OPENSSL_3.0.0")),
        ],
        &[],
    );
    let source = "void *SSL_CTX_new(void *);\nvoid *SSL_new(void *);\n#include <stdio.h>\n\
                  int main(void) { printf(\"%p\\n\", SSL_new(SSL_CTX_new(0))); return 0; }";
    let ssl_path = ssl.display().to_string();
    let bin = zig_program(&d, "tls", "2.11", source, &[&ssl_path]);
    let f = check(&bin);
    assert_eq!(
        findings(&f),
        [
            (
                "version-name",
                s("libssl.so.3"),
                None,
                s("OPENSSL_3.0.0"),
                "needs OPENSSL_3.0.0 from libssl.so.3: a version the policy does not know (only GLIBC_<number> is allowed)"
                    .to_string()
            ),
            (
                "static-openssl",
                s("libssl.so.3"),
                None,
                None,
                "needs the shared OpenSSL library libssl.so.3; OpenSSL must be linked statically".to_string()
            ),
            (
                "static-openssl",
                s("libssl.so.3"),
                f.violations[2].symbol.clone(),
                s("OPENSSL_3.0.0"),
                f.violations[2].message.clone()
            ),
        ]
    );
    let m = &f.violations[2].message;
    assert!(
        m.starts_with("needs OPENSSL_3.0.0 from libssl.so.3 (")
            && m.contains("SSL_new")
            && m.contains("SSL_CTX_new"),
        "{m}"
    );
}

#[test]
fn the_openssl_version_text_inside_must_be_the_pin() {
    let d = fixture_dir("openssl-version");
    let with = |text: &str| PROGRAM.replace("argv[0]", &format!("\"{text}\""));
    let pinned = Policy {
        openssl: Some("3.5.5".into()),
        ..policy()
    };
    let good = zig_program(&d, "good", "2.11", &with("OpenSSL 3.5.5 27 Jan 2026"), &[]);
    let f = check_with(&good, options(pinned.clone()));
    assert_eq!(findings(&f), []);
    assert_eq!(f.openssl, ["3.5.5"]);

    let other = zig_program(&d, "other", "2.11", &with("OpenSSL 3.0.2 15 Mar 2022"), &[]);
    assert_eq!(
        findings(&check_with(&other, options(pinned.clone()))),
        [(
            "openssl-version",
            None,
            None,
            s("3.0.2"),
            "contains OpenSSL 3.0.2; the pin is OpenSSL 3.5.5".to_string()
        )]
    );
    let none = zig_program(&d, "none", "2.11", &with("no TLS here"), &[]);
    assert_eq!(
        findings(&check_with(&none, options(pinned))),
        [(
            "openssl-version",
            None,
            None,
            s("3.5.5"),
            "no OpenSSL version text (`OpenSSL 3.5.5 <date>`) inside the binary: OpenSSL 3.5.5 is \
             not linked in statically"
                .to_string()
        )]
    );
}

#[test]
fn memcpy_must_be_pinned_to_2_2_5() {
    let d = fixture_dir("memcpy-pin");
    let bin = zig_program(&d, "memcpy", "2.14", PROGRAM, &[]);
    let f = check(&bin);
    assert_eq!(
        findings(&f),
        [
            (
                "glibc-version",
                s("libc.so.6"),
                s("memcpy"),
                s("GLIBC_2.14"),
                "memcpy@GLIBC_2.14 from libc.so.6 is newer than GLIBC_2.11".to_string()
            ),
            (
                "memcpy-pin",
                s("libc.so.6"),
                s("memcpy"),
                s("GLIBC_2.14"),
                "memcpy@GLIBC_2.14 from libc.so.6; it must be bound to GLIBC_2.2.5".to_string()
            ),
        ]
    );
}

/// The same binary against another policy file: glibc 2.17 and no memcpy
/// pin. A policy change changes the verdict with no code change.
#[test]
fn a_glibc_2_17_policy_accepts_what_the_2_11_policy_refuses() {
    let d = fixture_dir("policy-2.17");
    let bin = zig_program(&d, "memcpy", "2.14", PROGRAM, &[]);
    let rules = |f: &FileReport| f.violations.iter().map(|v| v.rule.id()).collect::<Vec<_>>();
    assert_eq!(rules(&check(&bin)), ["glibc-version", "memcpy-pin"]);
    let newer =
        Policy::load(&repo_root().join("crates/elfcheck/tests/data/x86_64-linux-gnu.2.17.toml"))
            .unwrap();
    assert_eq!(newer.name, "x86_64-linux-gnu.2.17");
    assert_ne!(newer.sha256, policy().sha256);
    let f = check_with(&bin, options(newer));
    assert_eq!(findings(&f), []);
    assert_eq!(f.highest_glibc(), Some("GLIBC_2.14"));
}

#[test]
fn the_interpreter_must_be_lib64_ld_linux() {
    let d = fixture_dir("interpreter");
    let bin = zig_program(
        &d,
        "interp",
        "2.11",
        PROGRAM,
        &["-Wl,--dynamic-linker=/lib/ld-linux-x86-64.so.2"],
    );
    assert_eq!(
        findings(&check(&bin)),
        [(
            "interpreter",
            s("/lib/ld-linux-x86-64.so.2"),
            None,
            None,
            "interpreter is /lib/ld-linux-x86-64.so.2, not /lib64/ld-linux-x86-64.so.2".to_string()
        )]
    );
}

#[test]
fn rpath_and_runpath_are_refused() {
    let d = fixture_dir("rpath");
    let runpath = zig_program(&d, "runpath", "2.11", PROGRAM, &["-Wl,-rpath,/opt/ssl/lib"]);
    assert_eq!(
        findings(&check(&runpath)),
        [(
            "rpath",
            None,
            None,
            None,
            "has RUNPATH `/opt/ssl/lib`: libraries must come from the host's glibc only"
                .to_string()
        )]
    );
    let rpath = cc_program(
        &d,
        "rpath",
        PROGRAM,
        &["-Wl,-rpath,/opt/x", "-Wl,--disable-new-dtags"],
    );
    assert_eq!(
        findings_of(&check(&rpath), "rpath"),
        [(
            "rpath",
            None,
            None,
            None,
            "has RPATH `/opt/x`: libraries must come from the host's glibc only".to_string()
        )]
    );
}

#[test]
fn packed_relative_relocations_are_refused() {
    let d = fixture_dir("relr");
    let bin = cc_program(&d, "relr", PROGRAM, &["-Wl,-z,pack-relative-relocs"]);
    assert_eq!(
        findings_of(&check(&bin), "relr"),
        [(
            "relr",
            s("libc.so.6"),
            None,
            s("GLIBC_ABI_DT_RELR"),
            "has DT_RELR packed relocations and a GLIBC_ABI_DT_RELR need on libc.so.6: only glibc \
             2.36 and later loaders understand them"
                .to_string()
        )]
    );
}

#[test]
fn an_isa_level_above_baseline_is_refused() {
    let d = fixture_dir("isa-level");
    let bin = cc_program(&d, "isa", PROGRAM, &["-Wl,-z,x86-64-v3"]);
    assert_eq!(
        findings_of(&check(&bin), "isa-level"),
        [(
            "isa-level",
            None,
            None,
            None,
            ".note.gnu.property needs ISA level x86-64-v3; the baseline is x86-64 (baseline)"
                .to_string()
        )]
    );
}

#[test]
fn the_abi_tag_may_not_ask_for_a_newer_kernel() {
    let d = fixture_dir("abi-tag");
    // Debian 12's crt1.o carries the ABI tag of its glibc: Linux 3.2.0.
    let bin = cc_program(&d, "tag", PROGRAM, &[]);
    let f = check(&bin);
    assert_eq!(
        findings_of(&f, "abi-tag"),
        [(
            "abi-tag",
            None,
            None,
            s("3.2.0"),
            "ABI tag asks for Linux 3.2.0, newer than the baseline's 2.6.32".to_string()
        )]
    );
    // zig's crt carries 2.0.0.
    let zig_built = zig_program(&d, "tag-zig", "2.11", PROGRAM, &[]);
    assert_eq!(findings_of(&check(&zig_built), "abi-tag"), []);
}

#[test]
fn hardening_pie_relro_nx_textrel_and_stack_protector() {
    let d = fixture_dir("hardening");
    let one = |name: &str, extra: &[&str]| {
        findings(&check(&zig_program(&d, name, "2.11", PROGRAM, extra)))
    };
    assert_eq!(
        one("no-pie", &["-fno-PIE", "-no-pie"]),
        [(
            "pie",
            None,
            None,
            None,
            "not a position-independent executable (Executable); ASLR cannot move it".to_string()
        )]
    );
    assert_eq!(
        one("lazy", &["-Wl,-z,lazy"]),
        [(
            "relro",
            None,
            None,
            None,
            "partial RELRO: PT_GNU_RELRO without BIND_NOW leaves the GOT writable".to_string()
        )]
    );
    assert_eq!(
        one("norelro", &["-Wl,-z,norelro"]),
        [(
            "relro",
            None,
            None,
            None,
            "no RELRO (PT_GNU_RELRO missing)".to_string()
        )]
    );
    assert_eq!(
        one("no-ssp", &["-fno-stack-protector"]),
        [(
            "stack-protector",
            None,
            s("__stack_chk_fail"),
            None,
            "does not import __stack_chk_fail: built without a stack protector".to_string()
        )]
    );
    let exec = cc_program(&d, "execstack", PROGRAM, &["-Wl,-z,execstack"]);
    assert_eq!(
        findings_of(&check(&exec), "nx-stack"),
        [(
            "nx-stack",
            None,
            None,
            None,
            "PT_GNU_STACK is executable".to_string()
        )]
    );
    // An absolute address in .text of a PIE needs a text relocation.
    let textrel_src = format!(
        "{PROGRAM}\n__asm__(\".text\\n.globl absolute_ref\\nabsolute_ref: .quad main\\n\");\n"
    );
    let textrel = cc_program(
        &d,
        "textrel",
        &textrel_src,
        &["-fPIE", "-pie", "-Wl,-z,notext"],
    );
    let f = check(&textrel);
    assert_eq!(
        findings_of(&f, "textrel"),
        [(
            "textrel",
            None,
            None,
            None,
            "has text relocations (DT_TEXTREL): code pages are written at load time".to_string()
        )]
    );
    assert!(f.hardening.unwrap().textrel);
}

#[test]
fn fortified_functions_must_exist_in_the_baseline() {
    let d = fixture_dir("fortify");
    // glibc 2.15 added __fdelt_chk for FD_SET with _FORTIFY_SOURCE.
    let source = "#include <sys/select.h>\n#include <stdio.h>\n\
                  int main(int argc, char **argv) { fd_set s; FD_ZERO(&s); FD_SET(argc, &s); \
                  printf(\"%d\\n\", FD_ISSET(argc, &s)); return 0; }";
    let bin = cc_program(&d, "fdelt", source, &["-D_FORTIFY_SOURCE=2"]);
    let f = check(&bin);
    assert_eq!(
        findings_of(&f, "fortify"),
        [(
            "fortify",
            s("libc.so.6"),
            s("__fdelt_chk"),
            s("GLIBC_2.15"),
            "__fdelt_chk@GLIBC_2.15 is not among glibc 2.11's fortified functions (glibc 2.11 has no \
             __fdelt_chk at all)"
                .to_string()
        )]
    );
    assert!(f
        .hardening
        .unwrap()
        .fortify
        .contains(&"__fdelt_chk".to_string()));
}

/// Fake host folders for one binary: `old` lacks GLIBC_2.14, `nosym` has the
/// version but not memcpy in it, `empty` has no libc, `good` has it all
/// (found through an absolute symlink in usr/lib64).
fn fake_hosts(d: &Path, bin: &Path) -> Vec<PathBuf> {
    let data = fs::read(bin).unwrap();
    let facts = verify::elf::read(&data).unwrap();
    let imports: Vec<(String, String)> = facts
        .imports
        .iter()
        .filter(|i| i.library.as_deref() == Some("libc.so.6"))
        .map(|i| (i.name.clone(), i.version.clone().unwrap()))
        .collect();
    assert!(
        imports
            .iter()
            .any(|(n, v)| n == "memcpy" && v == "GLIBC_2.14"),
        "{imports:?}"
    );
    let ld = |host: &Path| {
        fake_lib(
            &host.join("lib64"),
            "ld-linux-x86-64.so.2",
            &[("_dl_fake", Some("GLIBC_2.3"))],
            &[],
        )
    };
    let as_pairs = |v: &[(String, String)]| -> Vec<(String, String)> { v.to_vec() };
    let lib = |dir: &Path, syms: &[(String, String)], versions: &[&str]| {
        let syms: Vec<(&str, Option<&str>)> = syms
            .iter()
            .map(|(n, v)| (n.as_str(), Some(v.as_str())))
            .collect();
        fake_lib(dir, "libc.so.6", &syms, versions)
    };
    let without_memcpy_214: Vec<(String, String)> = as_pairs(&imports)
        .into_iter()
        .map(|(n, v)| {
            if n == "memcpy" {
                (n, "GLIBC_2.2.5".to_string())
            } else {
                (n, v)
            }
        })
        .collect();

    let old = d.join("hosts/old");
    ld(&old);
    lib(&old.join("lib64"), &without_memcpy_214, &[]);

    let nosym = d.join("hosts/nosym");
    ld(&nosym);
    let mut with_placeholder = without_memcpy_214.clone();
    with_placeholder.push(("placeholder_2_14".into(), "GLIBC_2.14".into()));
    lib(&nosym.join("lib64"), &with_placeholder, &["GLIBC_2.2.5"]);

    let empty = d.join("hosts/empty");
    ld(&empty);

    let good = d.join("hosts/good");
    fs::create_dir_all(good.join("lib64")).unwrap();
    lib(&good.join("usr/lib64/real"), &imports, &["GLIBC_2.2.5"]);
    std::os::unix::fs::symlink(
        "/usr/lib64/real/libc.so.6",
        good.join("usr/lib64/libc.so.6"),
    )
    .unwrap();
    ld(&good);
    vec![old, nosym, empty, good]
}

#[test]
fn against_fake_hosts_reports_what_their_loader_would_say() {
    let d = fixture_dir("against");
    let bin = zig_program(&d, "needs214", "2.14", PROGRAM, &[]);
    let hosts = fake_hosts(&d, &bin);
    let out = xtask()
        .arg("verify")
        .arg("--json")
        .arg("--openssl")
        .arg("none")
        .arg("--abilists")
        .arg(zig().abilists())
        .args(
            hosts
                .iter()
                .flat_map(|h| [PathBuf::from("--against"), h.clone()]),
        )
        .arg(&bin)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = bin.display().to_string();
    let rows: Vec<(String, bool, Vec<String>, Vec<String>)> = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["binary"], b.as_str());
            let strings = |k: &str| -> Vec<String> {
                h[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().replace(&b, "BIN"))
                    .collect()
            };
            (
                h["host"].as_str().unwrap().to_string(),
                h["passed"].as_bool().unwrap(),
                strings("missing"),
                strings("loader_errors"),
            )
        })
        .collect();
    let host = |p: &PathBuf| p.display().to_string();
    assert_eq!(
        rows,
        [
            (
                host(&hosts[0]),
                false,
                vec!["GLIBC_2.14 (libc.so.6)".to_string()],
                vec!["BIN: /lib64/libc.so.6: version `GLIBC_2.14' not found (required by BIN)".to_string()]
            ),
            (
                host(&hosts[1]),
                false,
                vec!["memcpy@GLIBC_2.14".to_string()],
                vec![
                    "BIN: relocation error: BIN: symbol memcpy version GLIBC_2.14 not defined in file \
                     libc.so.6 with link time reference"
                        .to_string()
                ]
            ),
            (
                host(&hosts[2]),
                false,
                vec!["libc.so.6".to_string()],
                vec![
                    "BIN: error while loading shared libraries: libc.so.6: cannot open shared object \
                     file: No such file or directory"
                        .to_string()
                ]
            ),
            (host(&hosts[3]), true, vec![], vec![]),
        ]
    );
    // The loader's lines are also violations, naming host, library, version.
    let v: Vec<&serde_json::Value> = report["files"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["rule"] == "target-host")
        .collect();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0]["host"], host(&hosts[0]).as_str());
    assert_eq!(v[0]["library"], "libc.so.6");
    assert_eq!(v[0]["version"], "GLIBC_2.14");
    assert_eq!(v[1]["symbol"], "memcpy");
    let errors = jsonschema::validate(&jsonschema::verify_report_schema(), &report);
    assert!(errors.is_empty(), "{errors:#?}");

    // The human report has one row per binary and host.
    let out = xtask()
        .args(["verify", "--openssl", "none", "--abilists"])
        .arg(zig().abilists())
        .args(
            hosts
                .iter()
                .flat_map(|h| [PathBuf::from("--against"), h.clone()]),
        )
        .arg(&bin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "[target-host {}] {b}: /lib64/libc.so.6: version `GLIBC_2.14' not found (required by {b})",
            host(&hosts[0])
        )),
        "{text}"
    );
    for (h, result, first) in [
        (&hosts[0], "FAIL", "GLIBC_2.14 (libc.so.6)"),
        (&hosts[1], "FAIL", "memcpy@GLIBC_2.14"),
        (&hosts[2], "FAIL", "libc.so.6"),
        (&hosts[3], "pass", ""),
    ] {
        assert!(
            text.lines().any(|l| l.contains(&host(h))
                && l.contains(result)
                && l.trim_end().ends_with(first)),
            "no `{result} {first}` row for {}:\n{text}",
            h.display()
        );
    }
}

#[test]
fn linker_maps_name_the_archive_member_behind_a_symbol() {
    let d = fixture_dir("linkmap");
    let libc = fake_lib(
        &d.join("c"),
        "libc.so.6",
        &[
            ("clock_gettime", Some("GLIBC_2.2.5")),
            ("__stack_chk_fail", Some("GLIBC_2.4")),
        ],
        &[],
    );
    fs::write(
        d.join("use.c"),
        "struct ts { long s, ns; };\nint clock_gettime(int, struct ts *);\n\
         void use_clock(void) { struct ts t; clock_gettime(1, &t); }\n",
    )
    .unwrap();
    cc(&d, &["-O2", "-fPIE", "-c", "use.c", "-o", "use.o"]);
    run(Command::new("ar")
        .current_dir(&d)
        .args(["rcs", "libuse.a", "use.o"]));
    // GNU ld writes the cross-reference table itself; verify finds
    // `<binary>.map` next to the binary.
    let bin = bare_program(
        &d,
        "mapped",
        "void use_clock(void);\nstatic void run(void) { use_clock(); }",
        &[Path::new("libuse.a"), &libc],
        &["-Wl,-Map=mapped.bin.map", "-Wl,--cref"],
    );
    let f = check(&bin);
    assert_eq!(
        f.map.as_deref(),
        Some(d.join("mapped.bin.map").to_str().unwrap())
    );
    let v = &f.violations[0];
    assert_eq!(
        (v.rule.id(), v.symbol.as_deref()),
        ("abi-symbol", Some("clock_gettime"))
    );
    assert_eq!(v.objects, ["libuse.a(use.o)"]);

    // zig's lld map (--print-map) has no such table: the build completes it
    // from the inputs the map lists, as for the Redis link.
    let source = "void use_clock(void);\nint main(void) { use_clock(); return 0; }\n";
    fs::write(d.join("main.c"), source).unwrap();
    // use.o comes from an archive, as Redis links its dependencies.
    zig_cc(&d, "2.17", &["-O2", "-fPIE", "-c", "use.c", "-o", "zuse.o"]);
    run(Command::new(zig().zig())
        .current_dir(&d)
        .args(["ar", "rcs", "libzuse.a", "zuse.o"]));
    let map = zig_cc(
        &d,
        "2.17",
        &[
            "-O2",
            "-fPIE",
            "-pie",
            "-o",
            "zig.bin",
            "main.c",
            "libzuse.a",
            "-Wl,--print-map",
        ],
    );
    assert!(!map.contains("Cross Reference Table"));
    let binary = fs::read(d.join("zig.bin")).unwrap();
    let completed = verify::linkmap::complete_for(&map, &binary, |p| d.join(p)).unwrap();
    fs::write(d.join("zig.map"), &completed).unwrap();
    let mut opts = options(policy());
    opts.maps = vec![d.join("zig.map")];
    let f = check_with(&d.join("zig.bin"), opts);
    let v: Vec<_> = f
        .violations
        .iter()
        .filter(|v| v.rule == verify::Rule::GlibcVersion)
        .collect();
    assert_eq!(v.len(), 1, "{:?}", f.violations);
    assert_eq!(v[0].symbol.as_deref(), Some("clock_gettime"));
    assert_eq!(v[0].objects, ["libzuse.a(zuse.o)"]);
    let text = verify::VerifyReport {
        files: vec![f.clone()],
        ..verify_paths(&[], &options(policy())).unwrap()
    }
    .human();
    assert!(text.contains("(referenced by libzuse.a(zuse.o))"), "{text}");
}

#[test]
fn files_that_are_not_executables_are_unusable_input() {
    let d = fixture_dir("unusable");
    fs::write(d.join("text"), "hello").unwrap();
    let lib = fake_lib(&d, "libx.so.1", &[("x", None)], &[]);
    let report = verify_paths(
        &[d.join("text"), lib, d.join("missing")],
        &options(policy()),
    )
    .unwrap();
    assert_eq!(report.exit_code(), 2);
    let errors: Vec<&str> = report
        .files
        .iter()
        .map(|f| f.error.as_deref().unwrap())
        .collect();
    assert!(errors[0].starts_with("not an ELF file"), "{}", errors[0]);
    assert!(
        errors[1].contains("SharedObject, not an executable"),
        "{}",
        errors[1]
    );
    assert!(errors[2].starts_with("cannot read"), "{}", errors[2]);
    // A missing ABI reference is an error, never a pass.
    let mut opts = options(policy());
    opts.abilists = d.join("no-abilists");
    let e = verify_paths(&[d.join("text")], &opts).unwrap_err();
    assert!(format!("{e:#}").contains("no-abilists"), "{e:#}");
}

#[test]
fn the_json_report_of_failing_fixtures_follows_the_schema() {
    let d = fixture_dir("schema");
    let bad = cc_program(&d, "host", PROGRAM, &["-Wl,-z,execstack"]);
    let good = zig_program(&d, "good", "2.11", PROGRAM, &[]);
    let report = verify_paths(&[bad, good, d.join("missing")], &options(policy())).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let errors = jsonschema::validate(&jsonschema::verify_report_schema(), &json);
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(!json["files"][0]["violations"]
        .as_array()
        .unwrap()
        .is_empty());
    // The validator itself rejects what the schema forbids.
    let mut broken = json.clone();
    broken["files"][0]["violations"][0]["rule"] = "no-such-rule".into();
    broken["files"][1].as_object_mut().unwrap().remove("needed");
    let errors = jsonschema::validate(&jsonschema::verify_report_schema(), &broken);
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn zigs_abilists_knows_where_glibc_2_11_kept_its_symbols() {
    let abi = GlibcAbi::load(&zig().abilists(), &policy()).unwrap();
    assert!(abi.symbol_count() > 1000, "{}", abi.symbol_count());
    assert!(abi.exports("librt.so.1", "clock_gettime", "GLIBC_2.2.5"));
    assert!(!abi.exports("libc.so.6", "clock_gettime", "GLIBC_2.2.5"));
    assert!(abi.exports("libc.so.6", "memcpy", "GLIBC_2.2.5"));
    assert!(!abi.exports("libc.so.6", "memcpy", "GLIBC_2.14"));
    assert!(abi.exports("ld-linux-x86-64.so.2", "__tls_get_addr", "GLIBC_2.3"));
    assert!(abi.exports("libc.so.6", "stdout", "GLIBC_2.2.5"));
    assert_eq!(abi.versions.last().map(String::as_str), Some("GLIBC_2.11"));
}

#[test]
fn against_reports_a_missing_interpreter_and_unversioned_symbols_as_the_loader_would() {
    let d = fixture_dir("against-unversioned");
    let libc = fake_lib(
        &d.join("c"),
        "libc.so.6",
        &[("puts", None), ("__stack_chk_fail", None)],
        &[],
    );
    let body = "int puts(const char *);\nstatic void run(void) { puts(\"x\"); }";
    let bin = bare_program(&d, "plain", body, &[&libc], &[]);
    // The host's libc lacks puts, and the host has no /lib64 loader.
    let host = d.join("host");
    fake_lib(
        &host.join("lib64"),
        "libc.so.6",
        &[("__stack_chk_fail", None)],
        &[],
    );
    let mut opts = options(policy());
    opts.hosts = vec![host.clone()];
    let report = verify_paths(std::slice::from_ref(&bin), &opts).unwrap();
    let b = bin.display().to_string();
    assert_eq!(
        report.hosts[0].loader_errors,
        [
            format!(
                "{b}: cannot execute: required file not found (the interpreter \
                 /lib64/ld-linux-x86-64.so.2 is not on this host)"
            ),
            format!("{b}: symbol lookup error: {b}: undefined symbol: puts"),
        ]
    );
    assert_eq!(
        report.hosts[0].missing,
        ["/lib64/ld-linux-x86-64.so.2", "puts"]
    );
}

/// `__builtin_cpu_supports` needs `__cpu_model` from zig's compiler_rt, one
/// archive member that also defines memcpy, memset, `__stack_chk_fail`…:
/// with a map, verify names what the runtime took over from glibc and why it
/// was linked; the same program asking CPUID itself passes.
#[test]
fn a_compiler_runtime_that_shadows_glibc_is_refused() {
    let d = fixture_dir("runtime-shadow");
    let program = |name: &str, feature_test: &str| {
        let source = format!(
            "#include <cpuid.h>\n#include <string.h>\n#include <stdio.h>\n\
             static int has_popcnt(void) {{ {feature_test} }}\n\
             int main(int argc, char **argv) {{ char b[32]; strncpy(b, argv[0], sizeof b - 1); b[31] = 0;\n\
             printf(\"%s %d %d\\n\", b, argc, has_popcnt()); return 0; }}\n"
        );
        let map_flag = "-Wl,--print-map".to_string();
        fs::write(d.join(format!("{name}.c")), source).unwrap();
        let mut args: Vec<String> = HARDENED.iter().map(|s| s.to_string()).collect();
        args.extend([
            "-o".into(),
            format!("{name}.bin"),
            format!("{name}.c"),
            map_flag,
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let map = zig_cc(&d, "2.11", &args);
        fs::write(d.join(format!("{name}.bin.map")), map).unwrap();
        check(&d.join(format!("{name}.bin")))
    };
    let builtin = program("builtin", "return __builtin_cpu_supports(\"popcnt\");");
    let shadow = findings_of(&builtin, "runtime-shadow");
    assert_eq!(shadow.len(), 1, "{:?}", builtin.violations);
    let message = &shadow[0].4;
    assert!(message.contains("libcompiler_rt.a("), "{message}");
    assert!(message.contains("__stack_chk_fail"), "{message}");
    assert!(
        message.contains("__cpu_model (what pulled it in)"),
        "{message}"
    );

    let cpuid = program(
        "cpuid",
        "unsigned a, b, c, d; return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_POPCNT);",
    );
    assert!(cpuid.violations.is_empty(), "{:?}", cpuid.violations);
}

#[test]
fn a_closed_stdout_ends_verify_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    // A reader that is gone before verify writes its report (`| head -0`).
    let mut child = xtask()
        .args(["verify", "--json", "--openssl", "none"])
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(13), "{:?}: {stderr}", out.status);
}

/// The static policy: a static PIE built by zig for musl passes it with the
/// hardening that applies to one file (PIE, full RELRO, NX stack); a
/// dynamic glibc build fails it for its interpreter, its libraries and each
/// symbol it imports, and the static binary fails the glibc policy for having
/// no interpreter.
#[test]
fn a_static_musl_pie_passes_the_static_policy_and_a_dynamic_build_does_not() {
    let d = fixture_dir("static");
    fs::write(d.join("static.c"), PROGRAM).unwrap();
    let mut args: Vec<&str> = HARDENED.to_vec();
    args.retain(|a| *a != "-D_FORTIFY_SOURCE=2");
    args.extend(["-o", "static.bin", "static.c"]);
    zig_cc_for(&d, "x86_64-linux-musl", &args);
    let static_bin = d.join("static.bin");
    let out = run(&mut Command::new(&static_bin));
    assert!(out.contains("static.bin"), "{out}");

    let policy = Policy::load(&repo_root().join("policy/x86_64-linux-musl-static.toml")).unwrap();
    assert_eq!((policy.glibc, policy.interpreter.as_deref()), (None, None));
    let f = check_with(&static_bin, options(policy.clone()));
    assert_eq!(findings(&f), []);
    let h = f.hardening.as_ref().unwrap();
    assert!(h.pie && h.nx_stack && !h.textrel, "{h:?}");
    assert_eq!(h.relro, "full");
    assert!(f.needed.is_empty() && f.imports == 0, "{f:?}");

    let dynamic = zig_program(&d, "dynamic", "2.11", PROGRAM, &[]);
    let f = check_with(&dynamic, options(policy));
    let rules: Vec<&str> = findings(&f).iter().map(|x| x.0).collect();
    assert_eq!(
        rules.iter().filter(|r| **r == "interpreter").count(),
        1,
        "{rules:?}"
    );
    let needed = findings_of(&f, "needed-libraries");
    assert!(
        needed.iter().any(|x| x.1.as_deref() == Some("libc.so.6"))
            && needed.iter().any(|x| x.2.as_deref() == Some("memcpy")),
        "{needed:?}"
    );

    let f = check(&static_bin);
    let interp = findings_of(&f, "interpreter");
    assert_eq!(interp.len(), 1, "{:?}", findings(&f));
    assert!(interp[0].4.contains("no interpreter"), "{interp:?}");
}

/// The aarch64 policy (glibc 2.17): a hardened zig build for
/// aarch64-linux-gnu.2.17 passes it, the loader named as aarch64's and its
/// needs all GLIBC_2.17; the x86_64 policy refuses to judge it (another
/// machine), and the aarch64 policy refuses an x86_64 program the same way.
#[test]
fn an_aarch64_build_for_glibc_2_17_passes_the_aarch64_policy_only() {
    let d = fixture_dir("aarch64");
    fs::write(d.join("arm.c"), PROGRAM).unwrap();
    let mut args: Vec<&str> = HARDENED.to_vec();
    args.extend(["-o", "arm.bin", "arm.c"]);
    zig_cc_for(&d, "aarch64-linux-gnu.2.17", &args);
    let arm = d.join("arm.bin");

    let policy = Policy::load(&repo_root().join("policy/aarch64-linux-gnu.2.17.toml")).unwrap();
    let f = check_with(&arm, options(policy.clone()));
    assert_eq!(findings(&f), []);
    assert_eq!(f.interpreter.as_deref(), Some("/lib/ld-linux-aarch64.so.1"));
    assert!(f.needed.iter().any(|n| n == "libc.so.6"), "{:?}", f.needed);
    assert!(
        !f.max_glibc.is_empty() && f.max_glibc.iter().all(|(_, v)| v == "GLIBC_2.17"),
        "{:?}",
        f.max_glibc
    );
    let h = f.hardening.as_ref().unwrap();
    assert!(
        h.pie && h.nx_stack && h.stack_protector && !h.textrel,
        "{h:?}"
    );
    assert!(
        !h.fortify.is_empty(),
        "the fortify rule saw no __*_chk import: {h:?}"
    );

    let mut report = verify_paths(std::slice::from_ref(&arm), &options(self::policy())).unwrap();
    let e = report.files.remove(0).error.unwrap_or_default();
    assert!(e.contains("a program for aarch64"), "{e}");
    let x86 = zig_program(&d, "x86", "2.11", PROGRAM, &[]);
    let mut report = verify_paths(std::slice::from_ref(&x86), &options(policy)).unwrap();
    let e = report.files.remove(0).error.unwrap_or_default();
    assert!(e.contains("a program for x86_64"), "{e}");

    // `--against` a host folder whose only libc.so.6 is aarch64's: the x86_64
    // program's loader skips it and cannot open libc.so.6.
    let host = d.join("arm-host");
    fs::create_dir_all(host.join("lib64")).unwrap();
    fs::write(d.join("lib.c"), "int f(void) { return 0; }\n").unwrap();
    zig_cc_for(
        &d,
        "aarch64-linux-gnu.2.17",
        &["-shared", "-o", "arm-host/lib64/libc.so.6", "lib.c"],
    );
    let mut opts = options(self::policy());
    opts.hosts = vec![host];
    let report = verify_paths(&[x86], &opts).unwrap();
    let errors: Vec<&String> = report.hosts.iter().flat_map(|h| &h.loader_errors).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("libc.so.6: cannot open shared object file")),
        "{errors:?}"
    );
}
