//! What the baseline loader must understand: the ELF identity (class,
//! machine, interpreter, ABI tag, ISA level) and the bindings the policy asks for.

use super::*;

/// memcpy-pin: each symbol the policy pins (`memcpy@GLIBC_2.2.5`: glibc 2.14
/// added a memcpy that old hosts lack) is bound to exactly that version.
pub(super) fn required_bindings(facts: &ElfFacts, policy: &Policy, v: &mut Vec<Violation>) {
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
pub(super) fn identity(facts: &ElfFacts, policy: &Policy, v: &mut Vec<Violation>) {
    match (&facts.interpreter, &policy.interpreter) {
        (Some(i), Some(want)) if i == want => {}
        (None, None) => {}
        (Some(i), Some(want)) => v.push(
            Violation::new(Rule::Interpreter, format!("interpreter is {i}, not {want}")).library(i),
        ),
        (Some(i), None) => v.push(
            Violation::new(
                Rule::Interpreter,
                format!(
                    "interpreter is {i}: a static binary has none, and the host may have no {i}"
                ),
            )
            .library(i),
        ),
        (None, Some(want)) => v.push(Violation::new(
            Rule::Interpreter,
            format!("no interpreter (PT_INTERP); it must be {want}"),
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
    // A static binary relocates itself: only a host loader must understand RELR.
    let old_loader = policy.glibc.is_some_and(|g| g < RELR_GLIBC);
    if (facts.relr || relr_need.is_some()) && old_loader {
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
