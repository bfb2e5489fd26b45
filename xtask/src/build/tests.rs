use super::*;

/// The keys of both steps (OpenSSL, then Redis on that OpenSSL) for one
/// set of inputs.
struct Inputs {
    project: Project,
    toolchain: Toolchain,
    flags: BuildFlags,
    openssl: SourcePin,
    redis: SourcePin,
    openssl_series: Series,
    series: Series,
}

impl Inputs {
    fn keys(&self) -> (String, String) {
        let cx = BuildContext {
            project: &self.project,
            toolchain: &self.toolchain,
            flags: &self.flags,
            steps: &StepLog::default(),
        };
        let openssl = OpensslStep::new(&cx, &self.openssl, &self.openssl_series)
            .unwrap()
            .step
            .key;
        let redis = RedisStep::new(&cx, &self.redis, &self.series, &openssl)
            .step
            .key;
        (openssl, redis)
    }
}

fn inputs() -> Inputs {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pins = crate::pins::Pins::load(&root).unwrap();
    Inputs {
        project: Project::new(root.clone(), PathBuf::from("/state/one")),
        toolchain: Toolchain {
            dir: PathBuf::from("/toolchains/one"),
            version: pins.toolchain.zig_version.clone(),
            identity: "wheel sha256:1111".into(),
            pin: pins.toolchain.clone(),
            target: pins.targets[0].clone(),
        },
        flags: BuildFlags::new(&pins.targets[0], &[], SandboxKind::Bwrap, 1_700_000_000, 2),
        openssl: pins.openssl.clone(),
        redis: pins.redis[0].clone(),
        openssl_series: Series::empty(Path::new("patches/openssl/3.5")),
        series: Series::empty(Path::new("patches/redis/7.0")),
    }
}

/// Every input of a build step changes its key (so a changed input
/// rebuilds), and nothing else does (so a moved state folder, another
/// -j or another toolchain path rebuild nothing).
#[test]
fn every_input_of_a_build_step_changes_its_key_and_nothing_else_does() {
    let (openssl, redis) = inputs().keys();
    let patch =
        crate::patch::parse("0001-x.patch", "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n").unwrap();
    type Change = (&'static str, fn(&mut Inputs, &crate::patch::Patch));
    // (what, change, changes the OpenSSL key too)
    let inputs_of_both: [Change; 11] = [
        ("the OpenSSL tree", |i, _| {
            i.openssl.tree = i.redis.tree.clone()
        }),
        ("the OpenSSL version", |i, _| {
            i.openssl.version.push_str(".1")
        }),
        ("OpenSSL's release date", |i, _| {
            i.openssl.released = "2001-01-01".into()
        }),
        ("an OpenSSL patch", |i, p| {
            i.openssl_series.patches.push(p.clone())
        }),
        ("the toolchain", |i, _| {
            i.toolchain.identity = "wheel sha256:2222".into()
        }),
        ("the target", |i, _| i.toolchain.target.zig.push('9')),
        ("the CPU", |i, _| i.toolchain.pin.cpu = "x86_64_v2".into()),
        ("the sandbox", |i, _| i.flags.sandbox = SandboxKind::None),
        ("OpenSSL's Configure", |i, _| {
            i.flags.openssl_configure.push("no-ocsp".into())
        }),
        ("a C flag", |i, _| i.flags.cflags.push("-O3".into())),
        ("a link flag", |i, _| i.flags.ldflags.push("-s".into())),
    ];
    for (what, change) in inputs_of_both {
        let mut i = inputs();
        change(&mut i, &patch);
        let (o, r) = i.keys();
        assert_ne!(o, openssl, "{what} must change the OpenSSL key");
        assert_ne!(r, redis, "{what} must change the Redis key");
    }
    // Redis's own inputs leave the OpenSSL build alone.
    let redis_only: [Change; 6] = [
        ("a Redis patch", |i, p| i.series.patches.push(p.clone())),
        ("the line's profile", |i, _| {
            i.flags.pgo = Pgo::Use {
                profile: "profiles/redis-7.0.15/x.profdata".into(),
                sha256: "11".into(),
                file: "/checkout/profiles/redis-7.0.15/x.profdata".into(),
            }
        }),
        ("the line's make variables", |i, _| {
            i.flags.line_make.push("OPTIMIZATION=-O2 -flto".into())
        }),
        ("the Redis tree", |i, _| {
            i.redis.tree = i.openssl.tree.clone()
        }),
        ("the Redis version", |i, _| i.redis.version.push_str(".1")),
        ("SOURCE_DATE_EPOCH", |i, _| i.flags.source_date_epoch += 1),
    ];
    for (what, change) in redis_only {
        let mut i = inputs();
        change(&mut i, &patch);
        let (o, r) = i.keys();
        assert_eq!(o, openssl, "{what} must not change the OpenSSL key");
        assert_ne!(r, redis, "{what} must change the Redis key");
    }
    // Where things are and how fast they build are not inputs.
    let not_inputs: [Change; 6] = [
        ("-j", |i, _| i.flags.jobs = 16),
        ("the state folder", |i, _| {
            i.project.state = "/state/two".into()
        }),
        ("the toolchain's folder", |i, _| {
            i.toolchain.dir = "/toolchains/two".into()
        }),
        ("the series folder", |i, _| {
            i.series.dir = "/elsewhere".into()
        }),
        ("the download addresses", |i, _| {
            i.openssl
                .urls
                .push("https://example.invalid/x.tar.gz".into());
            i.redis.archives.push("x.tar.gz".into())
        }),
        ("the checkout's folder", |i, _| {
            i.project.root = "/another/checkout".into()
        }),
    ];
    for (what, change) in not_inputs {
        let mut i = inputs();
        change(&mut i, &patch);
        assert_eq!(i.keys(), (openssl.clone(), redis.clone()), "{what}");
    }
}

#[test]
fn licence_headers_of_c_and_cxx_files() {
    let c = b"/* Copyright (c) A\n * BSD */\n#include <x.h>\n/* other */\n";
    assert_eq!(leading_comment(c), "/* Copyright (c) A\n * BSD */\n");
    let cxx = b"// fast_float\n//\n//    MIT License\n\n#ifndef X\n// later\n";
    assert_eq!(
        leading_comment(cxx),
        "// fast_float\n//\n//    MIT License\n"
    );
}

#[test]
fn recognises_bitcode_objects() {
    assert!(is_bitcode(b"BC\xC0\xDE\x35\x14"));
    assert!(is_bitcode(&[0xDE, 0xC0, 0x17, 0x0B, 0, 0]));
    assert!(!is_bitcode(b"\x7fELF\x02\x01"));
}

/// The default target's warm-up is the recipe as it always was (its zig
/// cache key, hence its builds, stay); a target with zig's runtime without
/// the C library builds that library first.
#[test]
fn the_warm_up_builds_the_runtime_only_for_the_targets_that_link_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let pins = Pins::load(root).unwrap();
    let default = pins.target(None).unwrap();
    assert_eq!(
        zig_warm_up(default, "baseline"),
        ZIG_WARM_UP.replace("@CXX_OBJECT@", "")
    );
    let arm = pins.target(Some("aarch64-linux-glibc2.17")).unwrap();
    let script = zig_warm_up(arm, "baseline");
    let build = crate::compiler_rt::build_command(&arm.zig, "baseline");
    assert!(script.starts_with(&build), "{script}");
    assert!(
        script.contains("-target aarch64-linux-gnu.2.17 -mcpu=baseline"),
        "{script}"
    );
    assert!(script.ends_with(ZIG_WARM_UP.replace("@CXX_OBJECT@", "").trim_start()));
}
