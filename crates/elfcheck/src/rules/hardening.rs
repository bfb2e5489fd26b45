//! Hardening: PIE, full RELRO, a non-executable stack, no TEXTREL, the stack
//! protector, fortified functions within the baseline.

use super::*;

/// PIE, full RELRO, non-executable stack, no TEXTREL, stack protector, and
/// fortified functions within the baseline.
pub(super) fn hardening(
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
                GlibcVersion::from_symbol_version(ver)
                    .is_some_and(|n| policy.glibc.is_some_and(|g| n <= g))
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
                        abi.glibc,
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
