//! Each rule on synthetic ELF facts and a synthetic glibc ABI: no compiler,
//! no zig. (`xtask/tests/verify_rules.rs` checks the same rules on real
//! binaries.)

use super::*;
use crate::{
    elf::AbiTag,
    policy::{Binding, HardeningPolicy},
};

/// The release target's policy, read from the repository.
fn policy() -> Policy {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../policy/x86_64-linux-gnu.2.11.toml");
    Policy::load(&path).unwrap()
}

/// (symbol, object?, [(library index, [version index])]) in zig's order.
type Symbol<'a> = (&'a str, bool, &'a [(u8, &'a [u8])]);

const LIBS: [&str; 3] = ["c", "rt", "ld"];
/// 2.2.5, 2.3, 2.3.4, 2.4, 2.11, 2.14, 2.15, 2.17, 2.36.
const VERSIONS: [[u8; 3]; 9] = [
    [2, 2, 5],
    [2, 3, 0],
    [2, 3, 4],
    [2, 4, 0],
    [2, 11, 0],
    [2, 14, 0],
    [2, 15, 0],
    [2, 17, 0],
    [2, 36, 0],
];
const SYMBOLS: &[Symbol] = &[
    ("memcpy", false, &[(0, &[0, 5])]),
    ("clock_gettime", false, &[(1, &[0]), (0, &[7])]),
    ("puts", false, &[(0, &[0])]),
    ("__stack_chk_fail", false, &[(0, &[3])]),
    ("__memcpy_chk", false, &[(0, &[2])]),
    ("__fdelt_chk", false, &[(0, &[6])]),
    ("__tls_get_addr", false, &[(2, &[1])]),
    ("stdout", true, &[(0, &[0])]),
];

/// An abilists file (the format `abilists.rs` reads) for x86_64-linux-gnu.
fn abilists() -> Vec<u8> {
    let mut d = vec![LIBS.len() as u8];
    for l in LIBS {
        d.extend(l.as_bytes());
        d.push(0);
    }
    d.push(VERSIONS.len() as u8);
    VERSIONS.iter().for_each(|v| d.extend(v));
    d.push(1);
    d.extend(b"x86_64-linux-gnu\0");
    for objects in [false, true] {
        let symbols: Vec<&Symbol> = SYMBOLS.iter().filter(|s| s.1 == objects).collect();
        let count: usize = symbols.iter().map(|s| s.2.len()).sum();
        d.extend((count as u16).to_le_bytes());
        for (name, _, inclusions) in symbols {
            d.extend(name.as_bytes());
            d.push(0);
            for (i, (lib, versions)) in inclusions.iter().enumerate() {
                d.push(1); // the target set: x86_64-linux-gnu
                if objects {
                    d.push(8); // size
                }
                let last = i + 1 == inclusions.len();
                d.push(lib | if last { 0x80 } else { 0 });
                for (j, v) in versions.iter().enumerate() {
                    d.push(v | if j + 1 == versions.len() { 0x80 } else { 0 });
                }
            }
        }
    }
    d
}

fn abi(policy: &Policy) -> GlibcAbi {
    GlibcAbi::parse(
        &abilists(),
        &policy.target,
        policy.glibc.unwrap(),
        policy.loader_soname(),
    )
    .unwrap()
}

fn import(name: &str, version: &str, library: &str) -> Import {
    Import {
        name: name.into(),
        version: Some(version.into()),
        library: Some(library.into()),
        weak: false,
    }
}

fn need(library: &str, version: &str) -> VersionNeed {
    VersionNeed {
        library: library.into(),
        version: version.into(),
        weak: false,
    }
}

/// The facts of a binary that passes every rule of the 2.11 policy.
fn good() -> ElfFacts {
    ElfFacts {
        imports: vec![
            import("memcpy", "GLIBC_2.2.5", "libc.so.6"),
            import("puts", "GLIBC_2.2.5", "libc.so.6"),
            import("__stack_chk_fail", "GLIBC_2.4", "libc.so.6"),
            import("__memcpy_chk", "GLIBC_2.3.4", "libc.so.6"),
        ],
        version_needs: vec![
            need("libc.so.6", "GLIBC_2.2.5"),
            need("libc.so.6", "GLIBC_2.4"),
            need("libc.so.6", "GLIBC_2.3.4"),
        ],
        abi_tag: Some(AbiTag {
            os: 0,
            kernel: [2, 6, 32],
        }),
        ..ElfFacts::test_pie(&["libc.so.6"])
    }
}

/// (rule, library, symbol, version) of every finding, with `policy`.
fn run_with(facts: &ElfFacts, data: &[u8], policy: &Policy) -> Vec<(Rule, String)> {
    check(facts, data, policy, &abi(policy))
        .violations
        .into_iter()
        .map(|v| {
            let what = [v.library, v.symbol, v.version]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (v.rule, what)
        })
        .collect()
}

fn run(facts: &ElfFacts) -> Vec<(Rule, String)> {
    run_with(facts, b"", &policy())
}

fn only(rule: Rule, what: &str) -> Vec<(Rule, String)> {
    vec![(rule, what.to_string())]
}

#[test]
fn the_good_binary_passes_and_its_hardening_is_reported() {
    let f = good();
    assert_eq!(run(&f), []);
    let found = check(&f, b"", &policy(), &abi(&policy()));
    assert_eq!(
        found.hardening,
        Hardening {
            pie: true,
            relro: "full",
            nx_stack: true,
            textrel: false,
            stack_protector: true,
            fortify: vec!["__memcpy_chk".into()],
        }
    );
}

#[test]
fn glibc_version_refuses_a_version_above_the_floor() {
    let mut f = good();
    f.imports
        .push(import("clock_gettime", "GLIBC_2.17", "libc.so.6"));
    f.version_needs.push(need("libc.so.6", "GLIBC_2.17"));
    assert_eq!(
        run(&f),
        only(Rule::GlibcVersion, "libc.so.6 clock_gettime GLIBC_2.17")
    );
    // A need no symbol uses is still a need.
    let mut f = good();
    f.version_needs.push(need("libm.so.6", "GLIBC_2.15"));
    f.needed.push("libm.so.6".into());
    assert_eq!(run(&f), only(Rule::GlibcVersion, "libm.so.6 GLIBC_2.15"));
}

#[test]
fn version_name_refuses_private_and_foreign_versions() {
    for name in ["GLIBC_PRIVATE", "GLIBCXX_3.4", "GLIBC_ABI_GNU_TLS"] {
        let mut f = good();
        f.version_needs.push(need("libc.so.6", name));
        assert_eq!(
            run(&f),
            only(Rule::VersionName, &format!("libc.so.6 {name}")),
            "{name}"
        );
    }
}

#[test]
fn abi_symbol_refuses_a_symbol_the_library_does_not_export_at_that_version() {
    // clock_gettime@GLIBC_2.2.5 is librt's in glibc 2.11, not libc's.
    let mut f = good();
    f.imports
        .push(import("clock_gettime", "GLIBC_2.2.5", "libc.so.6"));
    assert_eq!(
        run(&f),
        only(Rule::AbiSymbol, "libc.so.6 clock_gettime GLIBC_2.2.5")
    );
    let mut f = good();
    f.imports
        .push(import("clock_gettime", "GLIBC_2.2.5", "librt.so.1"));
    f.needed.push("librt.so.1".into());
    assert_eq!(run(&f), []);
}

#[test]
fn unversioned_symbol_refuses_a_reference_glibc_would_resolve() {
    let mut f = good();
    f.imports.push(Import {
        name: "puts".into(),
        version: None,
        library: None,
        weak: false,
    });
    assert_eq!(run(&f), only(Rule::UnversionedSymbol, "libc.so.6 puts"));
    // Weak unversioned references are listed apart, not refused.
    let mut f = good();
    f.imports.push(Import {
        name: "__gmon_start__".into(),
        version: None,
        library: None,
        weak: true,
    });
    let found = check(&f, b"", &policy(), &abi(&policy()));
    assert!(found.violations.is_empty(), "{:?}", found.violations);
    assert_eq!(found.weak_unversioned, ["__gmon_start__"]);
}

#[test]
fn needed_libraries_and_static_openssl_follow_the_policy_lists() {
    let mut f = good();
    f.needed.push("libz.so.1".into());
    assert_eq!(run(&f), only(Rule::NeededLibraries, "libz.so.1"));
    let mut f = good();
    f.needed.push("libssl.so.3".into());
    f.version_needs.push(need("libssl.so.3", "OPENSSL_3.0.0"));
    f.imports
        .push(import("SSL_new", "OPENSSL_3.0.0", "libssl.so.3"));
    assert_eq!(
        run(&f),
        [
            (Rule::VersionName, "libssl.so.3 OPENSSL_3.0.0".to_string()),
            (Rule::StaticOpenssl, "libssl.so.3".to_string()),
            (
                Rule::StaticOpenssl,
                "libssl.so.3 SSL_new OPENSSL_3.0.0".to_string()
            ),
        ]
    );
    // A policy that allows libz and does not ask for a static OpenSSL.
    let mut lenient = policy();
    lenient.allowed_needed.push("libz.so.1".into());
    lenient.static_openssl = false;
    let mut f = good();
    f.needed.push("libz.so.1".into());
    f.needed.push("libssl.so.3".into());
    assert_eq!(
        run_with(&f, b"", &lenient),
        only(Rule::NeededLibraries, "libssl.so.3")
    );
}

#[test]
fn openssl_version_compares_the_text_inside_with_the_pin() {
    let mut pinned = policy();
    pinned.openssl = Some("3.5.7".into());
    let f = good();
    assert_eq!(run_with(&f, b"\0OpenSSL 3.5.7 9 Jun 2026\0", &pinned), []);
    assert_eq!(
        run_with(&f, b"\0OpenSSL 3.0.2 15 Mar 2022\0", &pinned),
        only(Rule::OpensslVersion, "3.0.2")
    );
    assert_eq!(
        run_with(&f, b"no TLS", &pinned),
        only(Rule::OpensslVersion, "3.5.7")
    );
    // Without a pin nothing is checked.
    assert_eq!(run_with(&f, b"no TLS", &policy()), []);
}

#[test]
fn memcpy_pin_is_the_policys_required_binding() {
    let mut f = good();
    f.imports[0] = import("memcpy", "GLIBC_2.14", "libc.so.6");
    f.version_needs.push(need("libc.so.6", "GLIBC_2.14"));
    assert_eq!(
        run(&f),
        [
            (
                Rule::GlibcVersion,
                "libc.so.6 memcpy GLIBC_2.14".to_string()
            ),
            (Rule::MemcpyPin, "libc.so.6 memcpy GLIBC_2.14".to_string()),
        ]
    );
    // The glibc 2.17 policy file (no pinned binding) accepts the same
    // facts: a policy change, no code change.
    let newer = crate::policy::tests::glibc_2_17();
    assert_eq!(run_with(&f, b"", &newer), []);
    // Any binding can be pinned.
    let mut more = policy();
    more.required_bindings.push(Binding {
        symbol: "puts".into(),
        version: "GLIBC_2.3".into(),
    });
    assert_eq!(
        run_with(&good(), b"", &more),
        only(Rule::MemcpyPin, "libc.so.6 puts GLIBC_2.2.5")
    );
}

#[test]
fn interpreter_and_rpath_are_checked() {
    let mut f = good();
    f.interpreter = Some("/lib/ld-linux.so.2".into());
    assert_eq!(run(&f), only(Rule::Interpreter, "/lib/ld-linux.so.2"));
    let mut f = good();
    f.interpreter = None;
    assert_eq!(run(&f), only(Rule::Interpreter, ""));
    let mut f = good();
    f.rpath = Some("/opt/lib".into());
    f.runpath = Some("$ORIGIN".into());
    assert_eq!(
        run(&f),
        [(Rule::Rpath, String::new()), (Rule::Rpath, String::new())]
    );
}

#[test]
fn relr_is_refused_below_glibc_2_36_only() {
    let mut f = good();
    f.relr = true;
    f.version_needs.push(need("libc.so.6", "GLIBC_ABI_DT_RELR"));
    assert_eq!(run(&f), only(Rule::Relr, "libc.so.6 GLIBC_ABI_DT_RELR"));
    let mut newer = policy();
    newer.glibc = Some(GlibcVersion::new(2, 36));
    assert_eq!(run_with(&f, b"", &newer), []);
}

#[test]
fn isa_level_and_abi_tag_follow_the_policy() {
    let mut f = good();
    f.x86_isa_needed = Some(object::elf::GNU_PROPERTY_X86_ISA_1_V3);
    assert_eq!(run(&f), only(Rule::IsaLevel, ""));
    let mut v3 = policy();
    v3.isa_level = crate::policy::IsaLevel::V3;
    assert_eq!(run_with(&f, b"", &v3), []);

    let mut f = good();
    f.abi_tag = Some(AbiTag {
        os: 0,
        kernel: [3, 2, 0],
    });
    assert_eq!(run(&f), only(Rule::AbiTag, "3.2.0"));
    let mut newer = policy();
    newer.kernel = crate::version::KernelVersion([3, 10, 0]);
    assert_eq!(run_with(&f, b"", &newer), []);
    f.abi_tag = Some(AbiTag {
        os: 1,
        kernel: [2, 6, 32],
    });
    assert_eq!(run(&f), only(Rule::AbiTag, ""));
}

#[test]
fn hardening_rules_fire_and_the_policy_can_turn_each_off() {
    let mut f = good();
    f.kind = ElfKind::Executable;
    f.bind_now = false;
    f.stack_executable = None;
    f.textrel = true;
    f.imports.retain(|i| i.name != "__stack_chk_fail");
    f.imports
        .push(import("__fdelt_chk", "GLIBC_2.15", "libc.so.6"));
    f.version_needs.push(need("libc.so.6", "GLIBC_2.15"));
    let rules: Vec<Rule> = run(&f).into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        rules,
        [
            Rule::GlibcVersion,
            Rule::Pie,
            Rule::Relro,
            Rule::NxStack,
            Rule::Textrel,
            Rule::StackProtector,
            Rule::Fortify,
        ]
    );
    let mut off = policy();
    off.hardening = HardeningPolicy {
        pie: false,
        relro: Relro::Partial,
        nx_stack: false,
        no_textrel: false,
        stack_protector: false,
        fortify: false,
    };
    assert_eq!(
        run_with(&f, b"", &off),
        only(Rule::GlibcVersion, "libc.so.6 __fdelt_chk GLIBC_2.15")
    );
    f.has_relro = false;
    assert_eq!(
        run_with(&f, b"", &off)
            .into_iter()
            .map(|(r, _)| r)
            .collect::<Vec<_>>(),
        [Rule::GlibcVersion, Rule::Relro]
    );
}

#[test]
fn runtime_shadow_names_the_glibc_functions_a_runtime_member_defines() {
    let map = LinkMap {
        references: Default::default(),
        runtime: vec![
            ("/c/libcompiler_rt.a(/c/o/rt.o)".into(), "memcpy".into()),
            (
                "/c/libcompiler_rt.a(/c/o/rt.o)".into(),
                "__cpu_model".into(),
            ),
            // aarch64's mapping symbols mark code and data; they are no
            // reason for the member to be there.
            ("/c/libcompiler_rt.a(/c/o/rt.o)".into(), "$x".into()),
            ("/c/libcompiler_rt.a(/c/o/rt.o)".into(), "$d".into()),
            (
                "/c/libcompiler_rt.a(/c/o/other.o)".into(),
                "__udivti3".into(),
            ),
        ],
    };
    let p = policy();
    let v = runtime_shadow(&map, &abi(&p));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].rule, Rule::RuntimeShadow);
    assert_eq!(v[0].symbol.as_deref(), Some("memcpy"));
    assert!(
        v[0].message
            .contains("libcompiler_rt.a(rt.o) defines glibc's memcpy")
            && v[0]
                .message
                .contains("also supplies __cpu_model (what pulled it in)"),
        "{}",
        v[0].message
    );
}

#[test]
fn openssl_version_texts_are_found_and_other_mentions_ignored() {
    let data = b"\0OpenSSL 3.5.5 27 Jan 2026\0OpenSSL error\0OpenSSL 1.1.1w  11 Sep 2023\0\
                 OpenSSL 3.0.2 15 Mar 2022\0OpenSSL 3\0";
    assert_eq!(openssl_texts(data), ["1.1.1w", "3.0.2", "3.5.5"]);
    assert!(openssl_texts(b"no such text").is_empty());
}

/// Under a static policy: no interpreter, no library, no import; the glibc
/// rules have nothing to check, and RELR is the binary's own business.
#[test]
fn a_static_policy_refuses_an_interpreter_libraries_and_imports() {
    let policy = Policy::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../policy/x86_64-linux-musl-static.toml"),
    )
    .unwrap();
    let abi = GlibcAbi::load(std::path::Path::new("/nonexistent"), &policy).unwrap();
    let findings = |facts: &ElfFacts| -> Vec<(Rule, String)> {
        check(facts, b"", &policy, &abi)
            .violations
            .into_iter()
            .map(|v| (v.rule, v.symbol.or(v.library).unwrap_or_default()))
            .collect()
    };
    let static_pie = ElfFacts {
        interpreter: None,
        relr: true,
        ..ElfFacts::test_pie(&[])
    };
    assert_eq!(findings(&static_pie), []);
    assert_eq!(
        findings(&good()),
        [
            (Rule::NeededLibraries, "memcpy".to_string()),
            (Rule::NeededLibraries, "puts".into()),
            (Rule::NeededLibraries, "__stack_chk_fail".into()),
            (Rule::NeededLibraries, "__memcpy_chk".into()),
            (Rule::NeededLibraries, "libc.so.6".into()),
            (Rule::Interpreter, "/lib64/ld-linux-x86-64.so.2".into()),
        ]
    );
}
