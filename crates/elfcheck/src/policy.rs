//! What a target allows, read from a policy file (`policy/<target>.toml` in
//! the repository): the glibc floor, interpreter, kernel ABI floor, ISA level,
//! the libraries a binary may need, the bindings it must keep, and the
//! hardening it must have. Values are typed on load; a bad one is an error
//! naming the file, the key and the line.

use std::{fmt, fs, path::Path, str::FromStr};

use anyhow::{Context, Result};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::version::{GlibcVersion, KernelVersion};

/// A target's policy, with the name and hash of the file it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The file's name without `.toml`: `x86_64-linux-gnu.2.11`.
    pub name: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// zig target whose glibc ABI is the reference (`x86_64-linux-gnu`).
    pub target: String,
    /// Dynamic (the host's glibc loads it) or static (nothing on the host).
    pub linkage: Linkage,
    /// Highest glibc version a binary may need; `None` for a static
    /// target, whose binaries need nothing.
    pub glibc: Option<GlibcVersion>,
    /// The PT_INTERP every executable must name; `None` for a static
    /// target, whose binaries have none.
    pub interpreter: Option<String>,
    /// Newest kernel the ABI-tag note may ask for.
    pub kernel: KernelVersion,
    /// Highest x86 ISA level `.note.gnu.property` may ask for.
    pub isa_level: IsaLevel,
    /// The only libraries a binary may need.
    pub allowed_needed: Vec<String>,
    /// Symbols that must be bound to exactly this version (`memcpy@GLIBC_2.2.5`).
    pub required_bindings: Vec<Binding>,
    /// No shared libssl/libcrypto, no `OPENSSL_*` version needs.
    pub static_openssl: bool,
    pub hardening: HardeningPolicy,
    /// The OpenSSL version that must be linked in: a fact of the release,
    /// not of the target, so set by the caller (`None`: not checked).
    pub openssl: Option<String>,
}

/// How a target's binaries are linked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linkage {
    /// Loaded by the host's glibc: an interpreter, glibc libraries only.
    #[default]
    Dynamic,
    /// One file with its C library inside: no interpreter, no NEEDED, no
    /// symbol imported.
    Static,
}

/// The hardening every binary must have; `false` turns a rule off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(deserialize = "kebab-case"), deny_unknown_fields)]
pub struct HardeningPolicy {
    /// Position-independent executable.
    pub pie: bool,
    /// The RELRO at least required.
    pub relro: Relro,
    /// PT_GNU_STACK present and not executable.
    pub nx_stack: bool,
    /// No DT_TEXTREL.
    pub no_textrel: bool,
    /// `__stack_chk_fail` imported.
    pub stack_protector: bool,
    /// Every imported `__*_chk` function exists in the baseline glibc.
    pub fortify: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relro {
    None,
    Partial,
    Full,
}

impl Relro {
    pub fn name(self) -> &'static str {
        match self {
            Relro::None => "none",
            Relro::Partial => "partial",
            Relro::Full => "full",
        }
    }
}

/// An x86-64 ISA level (psABI): `baseline`, `x86-64-v2`, `x86-64-v3`, `x86-64-v4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IsaLevel {
    #[serde(rename = "baseline")]
    Baseline,
    #[serde(rename = "x86-64-v2")]
    V2,
    #[serde(rename = "x86-64-v3")]
    V3,
    #[serde(rename = "x86-64-v4")]
    V4,
}

impl IsaLevel {
    pub fn name(self) -> &'static str {
        match self {
            IsaLevel::Baseline => "baseline",
            IsaLevel::V2 => "x86-64-v2",
            IsaLevel::V3 => "x86-64-v3",
            IsaLevel::V4 => "x86-64-v4",
        }
    }
}

/// `symbol@VERSION`: the symbol must be bound to exactly that version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub symbol: String,
    pub version: String,
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.symbol, self.version)
    }
}

impl FromStr for Binding {
    type Err = String;

    fn from_str(s: &str) -> Result<Binding, String> {
        match s.split_once('@') {
            Some((symbol, version))
                if !symbol.is_empty() && GlibcVersion::from_symbol_version(version).is_some() =>
            {
                Ok(Binding {
                    symbol: symbol.to_string(),
                    version: version.to_string(),
                })
            }
            _ => Err(format!(
                "`{s}` is not a binding like memcpy@GLIBC_2.2.5 (symbol@GLIBC_<version>)"
            )),
        }
    }
}

impl Serialize for Binding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Binding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Binding, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

/// The file's layout.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct PolicyFile {
    target: String,
    #[serde(default)]
    linkage: Linkage,
    glibc: Option<GlibcVersion>,
    interpreter: Option<String>,
    kernel: KernelVersion,
    isa_level: IsaLevel,
    allowed_needed: Vec<String>,
    #[serde(default)]
    required_bindings: Vec<Binding>,
    static_openssl: bool,
    hardening: HardeningPolicy,
}

impl Policy {
    /// Read a policy file; the error names the file, the key and the fix.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading the policy {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let name = name.strip_suffix(".toml").unwrap_or(&name);
        Policy::parse(&text, name).with_context(|| {
            format!(
                "{} is not a valid policy: fix the value shown",
                path.display()
            )
        })
    }

    /// A policy from its text; `name` is what the report calls it.
    pub fn parse(text: &str, name: &str) -> Result<Policy> {
        let file: PolicyFile = toml::from_str(text)?;
        let arch = file.target.split('-').next().unwrap_or("");
        if !crate::elf::MACHINES.iter().any(|(_, m)| *m == arch) {
            let known: Vec<&str> = crate::elf::MACHINES.iter().map(|(_, m)| *m).collect();
            anyhow::bail!(
                "key `target`: `{}` is for no machine the checker reads ({}); name a zig target such as x86_64-linux-gnu",
                file.target,
                known.join(", ")
            );
        }
        if arch != "x86_64" && file.isa_level != IsaLevel::Baseline {
            anyhow::bail!(
                "key `isa-level`: x86 ISA levels do not apply to {arch}; set it to \"baseline\""
            );
        }
        match (file.linkage, &file.glibc, &file.interpreter) {
            (Linkage::Dynamic, Some(_), Some(i)) if !i.starts_with('/') => {
                anyhow::bail!("key `interpreter`: `{i}` is not an absolute path")
            }
            (Linkage::Dynamic, Some(_), Some(_)) => {}
            (Linkage::Dynamic, _, _) => anyhow::bail!(
                "a dynamic policy needs `glibc` (its floor) and `interpreter` (the loader's path)"
            ),
            (Linkage::Static, None, None) => {}
            (Linkage::Static, _, _) => anyhow::bail!(
                "`linkage = \"static\"`: a static binary needs no glibc and has no interpreter; remove `glibc` and `interpreter`"
            ),
        }
        if file.linkage == Linkage::Static {
            if !file.allowed_needed.is_empty() {
                anyhow::bail!("`linkage = \"static\"`: a static binary needs no library; make `allowed-needed` empty");
            }
            if !file.required_bindings.is_empty() {
                anyhow::bail!("`linkage = \"static\"`: a static binary binds no symbol; remove `required-bindings`");
            }
            let h = &file.hardening;
            if h.stack_protector || h.fortify {
                anyhow::bail!(
                    "`linkage = \"static\"`: `stack-protector` and `fortify` are read from imported \
                     symbols, and a static binary imports none; set both to false"
                );
            }
        }
        Ok(Policy {
            name: name.to_string(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            target: file.target,
            linkage: file.linkage,
            glibc: file.glibc,
            interpreter: file.interpreter,
            kernel: file.kernel,
            isa_level: file.isa_level,
            allowed_needed: file.allowed_needed,
            required_bindings: file.required_bindings,
            static_openssl: file.static_openssl,
            hardening: file.hardening,
            openssl: None,
        })
    }

    /// The loader's shared object name (`ld-linux-x86-64.so.2`), from the
    /// interpreter (empty for a static target).
    pub fn loader_soname(&self) -> &str {
        let i = self.interpreter.as_deref().unwrap_or("");
        i.rsplit('/').next().unwrap_or(i)
    }

    /// A static target's policy: no glibc, no interpreter, nothing imported.
    pub fn is_static(&self) -> bool {
        self.linkage == Linkage::Static
    }

    /// What zig's target string for this policy is: `x86_64-linux-gnu.2.11`,
    /// or the bare target (`x86_64-linux-musl`) for a static one.
    pub fn zig_target(&self) -> String {
        match self.glibc {
            Some(g) => format!("{}.{g}", self.target),
            None => self.target.clone(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn repo_policy() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/x86_64-linux-gnu.2.11.toml")
    }

    #[test]
    fn the_release_policy_loads_typed() {
        let p = Policy::load(&repo_policy()).unwrap();
        assert_eq!(p.name, "x86_64-linux-gnu.2.11");
        assert_eq!(p.glibc, Some(GlibcVersion::new(2, 11)));
        assert_eq!(p.kernel, KernelVersion([2, 6, 32]));
        assert_eq!(p.loader_soname(), "ld-linux-x86-64.so.2");
        assert_eq!(p.isa_level, IsaLevel::Baseline);
        assert_eq!(p.hardening.relro, Relro::Full);
        assert_eq!(
            p.required_bindings,
            [Binding {
                symbol: "memcpy".into(),
                version: "GLIBC_2.2.5".into()
            }]
        );
        let bytes = fs::read(repo_policy()).unwrap();
        assert_eq!(p.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(p.openssl, None);
    }

    /// The second policy of the tests: glibc 2.17, no memcpy pin.
    pub(crate) fn glibc_2_17() -> Policy {
        Policy::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/x86_64-linux-gnu.2.17.toml"),
        )
        .unwrap()
    }

    #[test]
    fn another_policy_file_is_another_target() {
        let p = glibc_2_17();
        assert_eq!(p.name, "x86_64-linux-gnu.2.17");
        assert_eq!(p.glibc, Some(GlibcVersion::new(2, 17)));
        assert!(p.required_bindings.is_empty());
        assert_ne!(p.sha256, Policy::load(&repo_policy()).unwrap().sha256);
    }

    /// A static policy names neither a glibc floor nor an interpreter, and
    /// allows no library; a dynamic one needs both.
    #[test]
    fn a_static_policy_has_no_glibc_no_interpreter_and_no_library() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../policy/x86_64-linux-musl-static.toml");
        let p = Policy::load(&path).unwrap();
        assert_eq!(p.linkage, Linkage::Static);
        assert_eq!((p.glibc, p.interpreter.as_deref()), (None, None));
        assert_eq!(
            (p.zig_target().as_str(), p.loader_soname()),
            ("x86_64-linux-musl", "")
        );
        let text = fs::read_to_string(&path).unwrap();
        for (to, says) in [
            (
                "linkage = \"static\"\nglibc = \"2.11\"",
                "remove `glibc` and `interpreter`",
            ),
            (
                "linkage = \"static\"\ninterpreter = \"/lib/ld-musl-x86_64.so.1\"",
                "remove `glibc`",
            ),
            ("linkage = \"dynamic\"", "needs `glibc`"),
        ] {
            let e = format!(
                "{:#}",
                Policy::parse(&text.replacen("linkage = \"static\"", to, 1), "x").unwrap_err()
            );
            assert!(e.contains(says), "{to}: {e}");
        }
        let libc = text.replacen("allowed-needed = []", "allowed-needed = [\"libc.so\"]", 1);
        let e = format!("{:#}", Policy::parse(&libc, "x").unwrap_err());
        assert!(e.contains("make `allowed-needed` empty"), "{e}");
        for (from, to, says) in [
            (
                "stack-protector = false",
                "stack-protector = true",
                "set both to false",
            ),
            ("fortify = false", "fortify = true", "set both to false"),
            (
                "static-openssl = true",
                "static-openssl = true\nrequired-bindings = [\"memcpy@GLIBC_2.2.5\"]",
                "remove `required-bindings`",
            ),
        ] {
            assert!(text.contains(from), "{from}");
            let e = format!(
                "{:#}",
                Policy::parse(&text.replacen(from, to, 1), "x").unwrap_err()
            );
            assert!(e.contains(says), "{to}: {e}");
        }
        assert!(p.is_static() && !Policy::load(&repo_policy()).unwrap().is_static());
        let arm64 = text.replacen(
            "target = \"x86_64-linux-musl\"",
            "target = \"arm64-linux-musl\"",
            1,
        );
        let e = format!("{:#}", Policy::parse(&arm64, "x").unwrap_err());
        assert!(e.contains("is for no machine the checker reads"), "{e}");
        let isa = text
            .replacen(
                "target = \"x86_64-linux-musl\"",
                "target = \"aarch64-linux-musl\"",
                1,
            )
            .replacen("isa-level = \"baseline\"", "isa-level = \"x86-64-v2\"", 1);
        let e = format!("{:#}", Policy::parse(&isa, "x").unwrap_err());
        assert!(e.contains("do not apply to aarch64"), "{e}");
    }

    #[test]
    fn a_bad_value_names_the_file_the_key_and_the_value() {
        let text = fs::read_to_string(repo_policy()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "glibc = \"2.11\"",
                "glibc = \"2.x\"",
                "`2.x` is not a glibc version",
            ),
            (
                "kernel = \"2.6.32\"",
                "kernel = \"two\"",
                "`two` is not a kernel version",
            ),
            ("isa-level = \"baseline\"", "isa-level = \"v9\"", "v9"),
            ("relro = \"full\"", "relro = \"most\"", "most"),
            (
                "required-bindings = [\"memcpy@GLIBC_2.2.5\"]",
                "required-bindings = [\"memcpy\"]",
                "`memcpy` is not a binding",
            ),
            (
                "static-openssl = true",
                "static-openssl = true\nstatic = 1",
                "static",
            ),
            (
                "interpreter = \"/lib64",
                "interpreter = \"lib64",
                "not an absolute path",
            ),
        ];
        for (from, to, says) in cases {
            assert!(text.contains(from), "{from}");
            let path = dir.path().join("bad.toml");
            fs::write(&path, text.replacen(from, to, 1)).unwrap();
            let e = format!("{:#}", Policy::load(&path).unwrap_err());
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(e.contains(says), "{to}: {e}");
        }
        // toml names the line and the key of a bad value.
        fs::write(
            dir.path().join("bad.toml"),
            text.replacen("glibc = \"2.11\"", "glibc = \"2.x\"", 1),
        )
        .unwrap();
        let e = format!(
            "{:#}",
            Policy::load(&dir.path().join("bad.toml")).unwrap_err()
        );
        assert!(e.contains("glibc = \"2.x\""), "{e}");
        let e = format!(
            "{:#}",
            Policy::load(&dir.path().join("missing.toml")).unwrap_err()
        );
        assert!(e.contains("missing.toml"), "{e}");
        // The binding's version is a glibc version.
        assert!("memcpy@GLIBC_PRIVATE".parse::<Binding>().is_err());
        assert!("memcpy@@GLIBC_2.14".parse::<Binding>().is_err());
    }
}
