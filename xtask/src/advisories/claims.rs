//! Claims checked against the built binaries: a symbol an advisory's fix
//! removes must be absent.

use super::*;

/// The `absent-symbols` of every not-affected statement: `(advisory,
/// symbol)` pairs the given binaries must not define.
pub fn absent_symbols(findings: &[Finding]) -> Vec<(&str, &str)> {
    findings
        .iter()
        .filter_map(|f| match &f.state {
            State::NotAffected(n) => Some(
                n.absent_symbols
                    .iter()
                    .map(move |s| (f.id.as_str(), s.as_str())),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Check that no binary defines a symbol a `code_not_present` statement says
/// is absent. `binaries` are (name, unstripped ELF bytes).
pub fn check_absent(findings: &[Finding], binaries: &[(String, Vec<u8>)]) -> Result<usize> {
    use object::{Object, ObjectSymbol};
    let wanted = absent_symbols(findings);
    let mut problems = Vec::new();
    for (name, bytes) in binaries {
        let file = object::File::parse(&**bytes).with_context(|| format!("reading {name}"))?;
        let defined: BTreeSet<&str> = file
            .symbols()
            .filter(|s| s.is_definition())
            .filter_map(|s| s.name().ok())
            .collect();
        for (id, sym) in &wanted {
            if defined.contains(sym) {
                problems.push(format!("{name} defines {sym} ({id})"));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "{ADVISORIES_FILE} says the vulnerable code is not in the release, but: {}; \
             check the build options or correct the statement",
            problems.join("; ")
        );
    }
    Ok(wanted.len())
}
