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

mod openssl;
pub use openssl::*;
mod loader;
use loader::*;
mod hardening;
use hardening::*;

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
    let mut weak_unversioned = Vec::new();
    match policy.glibc {
        Some(glibc) => {
            glibc_versions(facts, glibc, &mut v);
            version_names(facts, &mut v);
            weak_unversioned = abi_symbols(facts, glibc, abi, &mut v);
        }
        None => static_link(facts, &mut v),
    }
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
/// definitions win over glibc's for the whole program. The other symbols
/// it supplies (local names and aarch64's `$x`/`$d` mapping symbols left
/// out) are what pulled it in.
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
        } else if !symbol.contains('.') && !symbol.starts_with("__anon") && !symbol.starts_with('$')
        {
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

/// A static target's binary imports nothing (needed-libraries): with no
/// loader and no library to bind it, an import stays unresolved.
fn static_link(facts: &ElfFacts, v: &mut Vec<Violation>) {
    for imp in &facts.imports {
        v.push(
            Violation::new(
                Rule::NeededLibraries,
                format!(
                    "imports {}: a static binary imports nothing, nothing on the host would supply it",
                    imp.name
                ),
            )
            .symbol(&imp.name)
            .opt_library(imp.library.as_deref())
            .opt_version(imp.version.as_deref()),
        );
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
fn glibc_versions(facts: &ElfFacts, glibc: GlibcVersion, v: &mut Vec<Violation>) {
    for need in &facts.version_needs {
        let Some(number) = GlibcVersion::from_symbol_version(&need.version) else {
            continue;
        };
        if number <= glibc {
            continue;
        }
        let symbols = imports_of(facts, need);
        if symbols.is_empty() {
            v.push(
                Violation::new(
                    Rule::GlibcVersion,
                    format!(
                        "version {} from {} is newer than GLIBC_{}",
                        need.version, need.library, glibc
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
                        sym.name, need.version, need.library, glibc
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
    glibc: GlibcVersion,
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
                if number > glibc {
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
                if policy.allowed_needed.is_empty() {
                    format!("needs {lib}; a static binary needs no library")
                } else {
                    format!(
                        "needs {lib}, which is not one of {}",
                        policy.allowed_needed.join(", ")
                    )
                },
            )
            .library(lib)
        });
    }
}

fn is_openssl_library(lib: &str) -> bool {
    lib.starts_with("libssl") || lib.starts_with("libcrypto")
}

#[cfg(test)]
mod tests;
