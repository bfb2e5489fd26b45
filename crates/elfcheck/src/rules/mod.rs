//! The rules a release binary must pass. Each finding names the rule, and the
//! library, symbol and version it is about (see README.md, "verify").

use std::collections::BTreeSet;

use object::elf;

use crate::{
    abilists::GlibcAbi,
    elf::{ElfFacts, ElfKind, Import, VersionNeed},
    linkmap::{self, LinkMap},
    policy::{IsaLevel, Policy, Relro},
    report::{Hardening, Violation},
    rule::Rule,
    version::{GlibcVersion, KernelVersion},
};

/// What the rules found in one binary.
#[derive(Debug, Clone)]
pub struct Findings {
    pub violations: Vec<Violation>,
    pub hardening: Hardening,
    pub weak_unversioned: Vec<String>,
    pub openssl: Vec<String>,
}

/// The loaders that understand DT_RELR: glibc 2.36 and later.
const RELR_GLIBC: GlibcVersion = GlibcVersion::new(2, 36);

/// Every rule, in report order.
pub fn check(facts: &ElfFacts, data: &[u8], policy: &Policy, abi: &GlibcAbi) -> Findings {
    let mut v = Vec::new();
    glibc_versions(facts, policy, &mut v);
    version_names(facts, &mut v);
    let weak_unversioned = abi_symbols(facts, policy, abi, &mut v);
    needed_libraries(facts, policy, &mut v);
    if policy.static_openssl {
        openssl_needs(facts, &mut v);
    }
    let openssl = openssl_texts(data);
    if let Some(pin) = &policy.openssl {
        openssl_version(&openssl, pin, &mut v);
    }
    required_bindings(facts, policy, &mut v);
    identity(facts, policy, &mut v);
    let hardening = hardening(facts, policy, abi, &mut v);
    Findings {
        violations: v,
        hardening,
        weak_unversioned,
        openssl,
    }
}

/// runtime-shadow (needs a linker map): no glibc function is defined inside
/// the binary by the compiler's runtime. zig's compiler_rt is one archive
/// member that also defines memcpy, memset, the libm functions and
/// `__stack_chk_fail` as weak symbols: once anything pulls it in, those
/// definitions win over glibc's for the whole program.
pub fn runtime_shadow(map: &LinkMap, abi: &GlibcAbi) -> Vec<Violation> {
    let mut by_member: Vec<(&str, Vec<&str>, Vec<&str>)> = Vec::new();
    for (member, symbol) in &map.runtime {
        let at = match by_member.iter().position(|(m, _, _)| m == member) {
            Some(i) => i,
            None => {
                by_member.push((member, Vec::new(), Vec::new()));
                by_member.len() - 1
            }
        };
        let entry = &mut by_member[at];
        if abi.definitions(symbol).next().is_some() {
            entry.1.push(symbol);
        } else if !symbol.contains('.') && !symbol.starts_with("__anon") {
            entry.2.push(symbol);
        }
    }
    by_member
        .into_iter()
        .filter(|(_, shadowed, _)| !shadowed.is_empty())
        .map(|(member, shadowed, own)| {
            let reason = if own.is_empty() {
                String::new()
            } else {
                format!("; it also supplies {} (what pulled it in)", own.join(", "))
            };
            Violation::new(
                Rule::RuntimeShadow,
                format!(
                    "the compiler runtime {} defines glibc's {} inside the binary, so glibc's are never used{reason}",
                    short_member(member),
                    shadowed.join(", ")
                ),
            )
            .symbol(shadowed[0])
        })
        .collect()
}

/// `/cache/zig/o/…/libcompiler_rt.a(/cache/zig/o/…/compiler_rt_zcu.o)` →
/// `libcompiler_rt.a(compiler_rt_zcu.o)`.
fn short_member(member: &str) -> String {
    match linkmap::split_member(member) {
        (archive, Some(inner)) => format!("{}({})", linkmap::base(archive), linkmap::base(inner)),
        (file, None) => linkmap::base(file).to_string(),
    }
}

/// The imports a version need binds.
fn imports_of<'a>(facts: &'a ElfFacts, need: &VersionNeed) -> Vec<&'a Import> {
    facts
        .imports
        .iter()
        .filter(|i| {
            i.version.as_deref() == Some(need.version.as_str())
                && i.library.as_deref() == Some(need.library.as_str())
        })
        .collect()
}

/// glibc-version: every `GLIBC_x.y` needed, per library (ld-linux included),
/// is within the baseline.
fn glibc_versions(facts: &ElfFacts, policy: &Policy, v: &mut Vec<Violation>) {
    for need in &facts.version_needs {
        let Some(number) = GlibcVersion::from_symbol_version(&need.version) else {
            continue;
        };
        if number <= policy.glibc {
            continue;
        }
        let symbols = imports_of(facts, need);
        if symbols.is_empty() {
            v.push(
                Violation::new(
                    Rule::GlibcVersion,
                    format!(
                        "version {} from {} is newer than GLIBC_{}",
                        need.version, need.library, policy.glibc
                    ),
                )
                .library(&need.library)
                .version(&need.version),
            );
        }
        for sym in symbols {
            v.push(
                Violation::new(
                    Rule::GlibcVersion,
                    format!(
                        "{}@{} from {} is newer than GLIBC_{}",
                        sym.name, need.version, need.library, policy.glibc
                    ),
                )
                .library(&need.library)
                .symbol(&sym.name)
                .version(&need.version),
            );
        }
    }
}

/// version-name: only `GLIBC_<number>` versions; `GLIBC_PRIVATE` is glibc's
/// internal interface, other prefixes belong to libraries outside glibc.
/// (`GLIBC_ABI_DT_RELR` is reported by the relr rule.)
fn version_names(facts: &ElfFacts, v: &mut Vec<Violation>) {
    for need in &facts.version_needs {
        let name = need.version.as_str();
        let message = if GlibcVersion::from_symbol_version(name).is_some()
            || name == "GLIBC_ABI_DT_RELR"
        {
            continue;
        } else if name == "GLIBC_PRIVATE" {
            format!(
                "needs GLIBC_PRIVATE from {}: glibc's internal interface, different in every glibc build",
                need.library
            )
        } else if name.starts_with("GLIBC_ABI_") {
            format!(
                "needs the loader feature marker {name} from {}, which old glibc does not define",
                need.library
            )
        } else {
            format!(
                "needs {name} from {}: a version the policy does not know (only GLIBC_<number> is allowed)",
                need.library
            )
        };
        v.push(
            Violation::new(Rule::VersionName, message)
                .library(&need.library)
                .version(name),
        );
    }
}

/// abi-symbol: each undefined symbol bound by a version need to a glibc
/// library must be exported under exactly that version by that library in
/// the baseline glibc. Unversioned references that glibc would resolve are
/// reported (`unversioned-symbol`); weak unversioned ones are returned apart.
fn abi_symbols(
    facts: &ElfFacts,
    policy: &Policy,
    abi: &GlibcAbi,
    v: &mut Vec<Violation>,
) -> Vec<String> {
    let mut weak = Vec::new();
    let only_glibc = facts.needed.iter().all(|l| abi.is_glibc_library(l));
    for imp in &facts.imports {
        match (&imp.version, &imp.library) {
            (Some(version), Some(library)) => {
                if !abi.is_glibc_library(library) {
                    continue; // needed-libraries reports the library
                }
                let Some(number) = GlibcVersion::from_symbol_version(version) else {
                    continue; // version-name
                };
                if number > policy.glibc {
                    continue; // glibc-version
                }
                if abi.exports(library, &imp.name, version) {
                    continue;
                }
                v.push(
                    Violation::new(
                        Rule::AbiSymbol,
                        format!(
                            "{}@{} is bound to {library}, which does not export it in glibc {} ({}): {}",
                            imp.name,
                            version,
                            abi.glibc,
                            abi.target,
                            where_it_is(abi, &imp.name)
                        ),
                    )
                    .library(library)
                    .symbol(&imp.name)
                    .version(version),
                );
            }
            _ if imp.weak => weak.push(imp.name.clone()),
            _ => {
                let defs: Vec<(&str, &str)> = abi
                    .definitions(&imp.name)
                    .filter(|(l, _)| facts.needed.iter().any(|n| n == l))
                    .collect();
                if let Some((library, _)) = defs.first() {
                    let versions: Vec<&str> = defs.iter().map(|(_, v)| *v).collect();
                    v.push(
                        Violation::new(
                            Rule::UnversionedSymbol,
                            format!(
                                "{} is referenced without a version and resolves to {library} \
                                 (glibc {} has it as {}): the loader binds whatever the host's \
                                 default is",
                                imp.name,
                                abi.glibc,
                                versions
                                    .iter()
                                    .map(|ver| format!("{}@{ver}", imp.name))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                        .library(*library)
                        .symbol(&imp.name),
                    );
                } else if only_glibc {
                    v.push(
                        Violation::new(
                            Rule::AbiSymbol,
                            format!(
                                "{} is referenced without a version and no needed glibc {} library defines it: {}",
                                imp.name,
                                abi.glibc,
                                where_it_is(abi, &imp.name)
                            ),
                        )
                        .symbol(&imp.name),
                    );
                }
            }
        }
    }
    weak
}

/// Where the baseline glibc has a symbol, for the message.
fn where_it_is(abi: &GlibcAbi, symbol: &str) -> String {
    let defs: Vec<String> = abi
        .definitions(symbol)
        .map(|(l, v)| format!("{symbol}@{v} in {l}"))
        .collect();
    if defs.is_empty() {
        format!("glibc {} has no {symbol} at all", abi.glibc)
    } else {
        format!("glibc {} has {}", abi.glibc, defs.join(", "))
    }
}

/// needed-libraries: only the libraries the policy allows (OpenSSL's are
/// static-openssl when the policy wants it linked in).
fn needed_libraries(facts: &ElfFacts, policy: &Policy, v: &mut Vec<Violation>) {
    for lib in &facts.needed {
        if policy.allowed_needed.iter().any(|a| a == lib) {
            continue;
        }
        v.push(if policy.static_openssl && is_openssl_library(lib) {
            Violation::new(
                Rule::StaticOpenssl,
                format!(
                    "needs the shared OpenSSL library {lib}; OpenSSL must be linked statically"
                ),
            )
            .library(lib)
        } else {
            Violation::new(
                Rule::NeededLibraries,
                format!(
                    "needs {lib}, which is not one of {}",
                    policy.allowed_needed.join(", ")
                ),
            )
            .library(lib)
        });
    }
}

fn is_openssl_library(lib: &str) -> bool {
    lib.starts_with("libssl") || lib.starts_with("libcrypto")
}

/// static-openssl: no `OPENSSL_*` version needs.
fn openssl_needs(facts: &ElfFacts, v: &mut Vec<Violation>) {
    for need in &facts.version_needs {
        if !need.version.starts_with("OPENSSL_") {
            continue;
        }
        let syms: Vec<&str> = imports_of(facts, need)
            .into_iter()
            .map(|i| i.name.as_str())
            .collect();
        let shown: Vec<&str> = syms.iter().take(5).copied().collect();
        let more = syms.len().saturating_sub(shown.len());
        let mut violation = Violation::new(
            Rule::StaticOpenssl,
            format!(
                "needs {} from {} ({}{})",
                need.version,
                need.library,
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        )
        .library(&need.library)
        .version(&need.version);
        if let Some(first) = syms.first() {
            violation = violation.symbol(*first);
        }
        v.push(violation);
    }
}

/// The `OPENSSL_VERSION_TEXT`s inside a file: `OpenSSL 3.5.5 27 Jan 2026`.
pub fn openssl_texts(data: &[u8]) -> Vec<String> {
    const PREFIX: &[u8] = b"OpenSSL ";
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i + PREFIX.len() < data.len() {
        if data[i] != b'O' || !data[i..].starts_with(PREFIX) {
            i += 1;
            continue;
        }
        let start = i + PREFIX.len();
        let end = data[start..]
            .iter()
            .position(|b| *b == 0 || *b == b'\n')
            .map(|n| start + n)
            .unwrap_or(data.len())
            .min(start + 64);
        if let Ok(text) = std::str::from_utf8(&data[start..end]) {
            if let Some(version) = version_text(text) {
                found.insert(version);
            }
        }
        i = start;
    }
    found.into_iter().collect()
}

/// `3.5.5 27 Jan 2026` → `3.5.5`; anything else → None.
fn version_text(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    let version = words.next()?;
    let day = words.next()?;
    let month = words.next()?;
    let year = words.next()?;
    let ok = version.starts_with(|c: char| c.is_ascii_digit())
        && version.contains('.')
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && (1..=2).contains(&day.len())
        && day.chars().all(|c| c.is_ascii_digit())
        && month.len() == 3
        && month.chars().all(|c| c.is_ascii_alphabetic())
        && year.len() >= 4
        && year[..4].chars().all(|c| c.is_ascii_digit());
    ok.then(|| version.to_string())
}

/// openssl-version: the OpenSSL linked in is the pinned one.
fn openssl_version(found: &[String], pin: &str, v: &mut Vec<Violation>) {
    if found.is_empty() {
        v.push(
            Violation::new(
                Rule::OpensslVersion,
                format!(
                    "no OpenSSL version text (`OpenSSL {pin} <date>`) inside the binary: \
                     OpenSSL {pin} is not linked in statically"
                ),
            )
            .version(pin),
        );
    }
    for other in found.iter().filter(|f| *f != pin) {
        v.push(
            Violation::new(
                Rule::OpensslVersion,
                format!("contains OpenSSL {other}; the pin is OpenSSL {pin}"),
            )
            .version(other),
        );
    }
}

/// memcpy-pin: each symbol the policy pins (`memcpy@GLIBC_2.2.5`: glibc 2.14
/// added a memcpy that old hosts lack) is bound to exactly that version.
fn required_bindings(facts: &ElfFacts, policy: &Policy, v: &mut Vec<Violation>) {
    for pin in &policy.required_bindings {
        for imp in facts.imports.iter().filter(|i| i.name == pin.symbol) {
            if imp.version.as_deref() == Some(pin.version.as_str()) {
                continue;
            }
            v.push(
                Violation::new(
                    Rule::MemcpyPin,
                    format!(
                        "{}@{} from {}; it must be bound to {}",
                        pin.symbol,
                        imp.version.as_deref().unwrap_or("(unversioned)"),
                        imp.library.as_deref().unwrap_or("?"),
                        pin.version
                    ),
                )
                .opt_library(imp.library.as_deref())
                .symbol(&pin.symbol)
                .opt_version(imp.version.as_deref()),
            );
        }
    }
}

/// ELF identity and loader features the baseline loader must understand.
fn identity(facts: &ElfFacts, policy: &Policy, v: &mut Vec<Violation>) {
    match &facts.interpreter {
        Some(i) if *i == policy.interpreter => {}
        Some(i) => v.push(
            Violation::new(
                Rule::Interpreter,
                format!("interpreter is {i}, not {}", policy.interpreter),
            )
            .library(i),
        ),
        None => v.push(Violation::new(
            Rule::Interpreter,
            format!(
                "no interpreter (PT_INTERP); it must be {}",
                policy.interpreter
            ),
        )),
    }
    for (tag, value) in [("RPATH", &facts.rpath), ("RUNPATH", &facts.runpath)] {
        if let Some(path) = value {
            v.push(Violation::new(
                Rule::Rpath,
                format!("has {tag} `{path}`: libraries must come from the host's glibc only"),
            ));
        }
    }
    let relr_need = facts
        .version_needs
        .iter()
        .find(|n| n.version == "GLIBC_ABI_DT_RELR");
    if (facts.relr || relr_need.is_some()) && policy.glibc < RELR_GLIBC {
        let mut what = Vec::new();
        if facts.relr {
            what.push("DT_RELR packed relocations".to_string());
        }
        if let Some(n) = relr_need {
            what.push(format!("a GLIBC_ABI_DT_RELR need on {}", n.library));
        }
        v.push(
            Violation::new(
                Rule::Relr,
                format!(
                    "has {}: only glibc 2.36 and later loaders understand them",
                    what.join(" and ")
                ),
            )
            .opt_library(relr_need.map(|n| n.library.as_str()))
            .opt_version(relr_need.map(|n| n.version.as_str())),
        );
    }
    if let Some(bits) = facts.x86_isa_needed {
        let levels: Vec<&str> = [
            (elf::GNU_PROPERTY_X86_ISA_1_V2, IsaLevel::V2),
            (elf::GNU_PROPERTY_X86_ISA_1_V3, IsaLevel::V3),
            (elf::GNU_PROPERTY_X86_ISA_1_V4, IsaLevel::V4),
        ]
        .iter()
        .filter(|(bit, level)| bits & bit != 0 && *level > policy.isa_level)
        .map(|(_, level)| level.name())
        .collect();
        if !levels.is_empty() {
            let allowed = match policy.isa_level {
                IsaLevel::Baseline => "x86-64 (baseline)",
                other => other.name(),
            };
            v.push(Violation::new(
                Rule::IsaLevel,
                format!(
                    ".note.gnu.property needs ISA level {}; the baseline is {allowed}",
                    levels.join(", ")
                ),
            ));
        }
    }
    if let Some(tag) = facts.abi_tag {
        let kernel = KernelVersion(tag.kernel);
        if tag.os != elf::ELF_NOTE_OS_LINUX {
            v.push(Violation::new(
                Rule::AbiTag,
                format!("ABI tag names OS {} instead of Linux (0)", tag.os),
            ));
        } else if kernel > policy.kernel {
            v.push(
                Violation::new(
                    Rule::AbiTag,
                    format!(
                        "ABI tag asks for Linux {kernel}, newer than the baseline's {}",
                        policy.kernel
                    ),
                )
                .version(kernel.to_string()),
            );
        }
    }
}

/// PIE, full RELRO, non-executable stack, no TEXTREL, stack protector, and
/// fortified functions within the baseline.
fn hardening(
    facts: &ElfFacts,
    policy: &Policy,
    abi: &GlibcAbi,
    v: &mut Vec<Violation>,
) -> Hardening {
    let want = policy.hardening;
    let pie = facts.kind == ElfKind::Pie;
    if want.pie && !pie {
        v.push(Violation::new(
            Rule::Pie,
            format!(
                "not a position-independent executable ({:?}); ASLR cannot move it",
                facts.kind
            ),
        ));
    }
    let relro = match (facts.has_relro, facts.bind_now) {
        (true, true) => Relro::Full,
        (true, false) => Relro::Partial,
        (false, _) => Relro::None,
    };
    if relro < want.relro {
        v.push(Violation::new(
            Rule::Relro,
            match relro {
                Relro::Partial => {
                    "partial RELRO: PT_GNU_RELRO without BIND_NOW leaves the GOT writable"
                }
                _ => "no RELRO (PT_GNU_RELRO missing)",
            },
        ));
    }
    let nx_stack = facts.stack_executable == Some(false);
    if want.nx_stack && !nx_stack {
        v.push(Violation::new(
            Rule::NxStack,
            match facts.stack_executable {
                Some(_) => "PT_GNU_STACK is executable",
                None => "no PT_GNU_STACK: the loader makes the stack executable",
            },
        ));
    }
    if want.no_textrel && facts.textrel {
        v.push(Violation::new(
            Rule::Textrel,
            "has text relocations (DT_TEXTREL): code pages are written at load time",
        ));
    }
    let stack_protector = facts.imports.iter().any(|i| i.name == "__stack_chk_fail");
    if want.stack_protector && !stack_protector {
        v.push(
            Violation::new(
                Rule::StackProtector,
                "does not import __stack_chk_fail: built without a stack protector",
            )
            .symbol("__stack_chk_fail"),
        );
    }
    let mut fortify = Vec::new();
    for imp in &facts.imports {
        if !(imp.name.starts_with("__") && imp.name.ends_with("_chk"))
            || imp.name == "__stack_chk_fail"
        {
            continue;
        }
        fortify.push(imp.name.clone());
        let in_baseline = match (&imp.library, &imp.version) {
            (Some(l), Some(ver)) => {
                GlibcVersion::from_symbol_version(ver).is_some_and(|n| n <= policy.glibc)
                    && abi.exports(l, &imp.name, ver)
            }
            _ => false,
        };
        if want.fortify && !in_baseline {
            v.push(
                Violation::new(
                    Rule::Fortify,
                    format!(
                        "{}@{} is not among glibc {}'s fortified functions ({})",
                        imp.name,
                        imp.version.as_deref().unwrap_or("(unversioned)"),
                        policy.glibc,
                        where_it_is(abi, &imp.name)
                    ),
                )
                .opt_library(imp.library.as_deref())
                .symbol(&imp.name)
                .opt_version(imp.version.as_deref()),
            );
        }
    }
    fortify.sort();
    fortify.dedup();
    Hardening {
        pie,
        relro: relro.name(),
        nx_stack,
        textrel: facts.textrel,
        stack_protector,
        fortify,
    }
}

#[cfg(test)]
mod tests;
