//! Reading `Cargo.lock`: which version and checksum Cargo resolved for a crate.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub source: Option<String>,
    pub checksum: Option<String>,
}

/// The registry package `name` as Cargo.lock resolves it.
pub fn locked(lock_text: &str, name: &str) -> Result<LockedPackage> {
    let lock: Lock = toml::from_str(lock_text).context("Cargo.lock is not valid TOML")?;
    let mut found: Vec<_> = lock
        .package
        .into_iter()
        .filter(|p| p.name == name)
        .collect();
    match found.len() {
        0 => bail!("Cargo.lock has no package `{name}`; run `cargo update -p {name}` after adding it to xtask/Cargo.toml"),
        1 => {
            let p = found.remove(0);
            if p.checksum.is_none() || !p.source.as_deref().unwrap_or("").starts_with("registry+") {
                bail!("Cargo.lock's `{name}` {} is not a checksummed registry package", p.version);
            }
            Ok(p)
        }
        n => bail!("Cargo.lock resolves {n} versions of `{name}`; the pin needs exactly one"),
    }
}

pub fn locked_in(root: &Path, name: &str) -> Result<LockedPackage> {
    let path = root.join("Cargo.lock");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    locked(&text, name).with_context(|| format!("in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "cc"
version = "1.2.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aa"

[[package]]
name = "openssl-src"
version = "300.5.5+3.5.5"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "3f1787d533e03597a7934fd0a765f0d28e94ecc5fb7789f8053b1e699a56f709"
dependencies = ["cc"]

[[package]]
name = "xtask"
version = "0.1.0"
"#;

    #[test]
    fn finds_version_and_checksum() {
        let p = locked(LOCK, "openssl-src").unwrap();
        assert_eq!(p.version, "300.5.5+3.5.5");
        assert_eq!(
            p.checksum.as_deref(),
            Some("3f1787d533e03597a7934fd0a765f0d28e94ecc5fb7789f8053b1e699a56f709")
        );
    }

    #[test]
    fn missing_duplicate_and_local_packages_are_errors() {
        assert!(format!("{:#}", locked(LOCK, "libc").unwrap_err()).contains("no package `libc`"));
        assert!(format!("{:#}", locked(LOCK, "xtask").unwrap_err())
            .contains("not a checksummed registry package"));
        let twice = format!("{LOCK}\n[[package]]\nname = \"cc\"\nversion = \"1.3.0\"\n");
        assert!(format!("{:#}", locked(&twice, "cc").unwrap_err()).contains("2 versions"));
        assert!(locked("this is [not toml", "cc").is_err());
    }

    #[test]
    fn reads_the_repository_lock() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let p = locked_in(root, "serde").unwrap();
        assert!(p.version.starts_with("1."), "{}", p.version);
        assert!(
            locked_in(root, "openssl-src").is_err(),
            "no pin needs a crate origin now"
        );
    }
}
