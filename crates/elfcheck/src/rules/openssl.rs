//! OpenSSL: linked statically (no libssl/libcrypto need), and the version
//! texts in the binary name the pinned release.

use super::*;

/// static-openssl: no `OPENSSL_*` version needs.
pub(super) fn openssl_needs(facts: &ElfFacts, v: &mut Vec<Violation>) {
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
pub(super) fn openssl_version(found: &[String], pin: &str, v: &mut Vec<Violation>) {
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
