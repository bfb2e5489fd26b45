//! `vendor/sources.toml`: the pinned inputs of a release.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::treehash::TreeHash;

pub const PINS_FILE: &str = "vendor/sources.toml";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Pins {
    pub toolchain: ZigPin,
    /// What a release can be built for (`[[target]]`); the first is the
    /// default.
    #[serde(rename = "target", default)]
    pub targets: Vec<Target>,
    pub openssl: SourcePin,
    /// One entry per Redis line that can be built (e.g. 7.0 and 8.0).
    pub redis: Vec<SourcePin>,
    /// The C library a target host is built from (`cargo xtask host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glibc: Option<SourcePin>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ZigPin {
    pub zig_version: String,
    /// The wheel's file name on PyPI (package `ziglang`).
    pub wheel: String,
    pub wheel_sha256: String,
    pub cpu: String,
    /// The optimisation flags the compiler wrappers always pass first.
    pub opt: String,
}

/// A platform a release is built for: data, not code. `cargo xtask dist
/// --target NAME` picks one; its name ends the release's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Target {
    /// `x86_64-linux-glibc2.11`: what `--target` and the release name say.
    pub name: String,
    /// zig's target, the C library floor included (`x86_64-linux-gnu.2.11`).
    pub zig: String,
    /// The verify policy every binary must pass, relative to the checkout.
    pub policy: String,
    /// OpenSSL's `Configure` target (`linux-x86_64`).
    pub openssl: String,
    /// jemalloc's configure options (Redis's `JEMALLOC_CONFIGURE_OPTS`):
    /// the page size and address space it is built for are the target's.
    pub jemalloc: String,
    /// Redis's extra `make` variables for this target (`uname_M=aarch64`:
    /// Redis's Makefile reads the build machine's architecture otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub make: Vec<String>,
    /// Which compiler runtime the links use (src/compiler_rt.rs).
    #[serde(default, skip_serializing_if = "CompilerRt::is_zig")]
    pub compiler_rt: CompilerRt,
    /// How this machine runs the target's programs when its architecture
    /// is another (src/emulator.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator: Option<Emulator>,
    /// What it runs on, for the release's own texts.
    pub runs_on: String,
    /// The distributions it runs on, by name, for the release's README.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<String>,
}

/// qemu-user and a root of Debian's C library for the target's architecture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Emulator {
    /// qemu-user's program for the architecture (`qemu-aarch64`).
    pub program: String,
    /// The CPU it emulates (`cortex-a57`: the oldest the release is for).
    pub cpu: String,
    /// Debian's name of the architecture (`arm64`).
    pub debian_arch: String,
    /// The packages unpacked into the root (`libc6`, `libgcc-s1`).
    pub packages: Vec<String>,
}

/// The compiler runtime of a target's links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompilerRt {
    /// zig's own, as zig links it: for targets whose programs never need it.
    #[default]
    Zig,
    /// zig's without the C library's functions, named before zig's on every
    /// link (`crate::compiler_rt`).
    WithoutLibc,
}

impl CompilerRt {
    fn is_zig(&self) -> bool {
        *self == CompilerRt::Zig
    }
}

/// `dist --target all`: every target; no target may have this name.
pub const ALL_TARGETS: &str = "all";

/// The CPU architectures and C libraries a patch's `Only-for:` header may name.
pub const ARCHES: [&str; 2] = ["x86_64", "aarch64"];
pub const LIBCS: [&str; 2] = ["glibc", "musl"];

impl Target {
    /// The CPU architecture of zig's target (`x86_64`).
    pub fn arch(&self) -> &str {
        self.zig.split('-').next().unwrap_or("")
    }

    /// The C library of zig's target: `glibc` (`…-gnu.2.11`) or `musl`.
    pub fn libc(&self) -> &str {
        match self.zig.split('-').nth(2) {
            Some(abi) if abi.starts_with("musl") => "musl",
            Some(abi) if abi.starts_with("gnu") => "glibc",
            _ => "",
        }
    }

    /// What a patch's `Only-for:` words are matched against.
    pub fn facets(&self) -> [&str; 2] {
        [self.arch(), self.libc()]
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourcePin {
    pub name: String,
    pub version: String,
    /// Release date, `YYYY-MM-DD`; the Redis pin's date is SOURCE_DATE_EPOCH.
    pub released: String,
    /// Content hash of the unpacked tree (see `treehash`).
    pub tree: TreeHash,
    /// Archive file names that may hold the tree (mirror folder and cache).
    #[serde(default)]
    pub archives: Vec<String>,
    /// Folder inside the archive that is the tree; default: its one top folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Upstream download addresses, tried in order with curl.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Debian/Ubuntu source package that ships this version's orig tarball.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<DebianPin>,
    /// `name@version` of a crate in Cargo.lock whose files are this tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cargo_crate: Option<String>,
    /// Patch series folder, relative to the repository root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<String>,
    /// Files in the tree that carry its licence terms (copied into releases).
    #[serde(default)]
    pub licenses: Vec<String>,
    /// SPDX licence expression of the tree's own code.
    pub license: String,
    /// Third-party components shipped inside the tree (Redis's `deps/`).
    #[serde(default)]
    pub bundled: Vec<BundledPin>,
    /// A distribution's security patch queue for this very version, applied
    /// after the pin's own series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityPin>,
    /// Redis pins: this line's extra `make` variables, after the target's
    /// (7.0's Makefile builds `-O2` without link-time optimisation; 8.0's
    /// asks for `-O3 -flto` itself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub make: Vec<String>,
}

/// The CVE fixes of a distribution's package of the pinned upstream version:
/// its patch archive, pinned by hash, and the patches of it that are applied
/// (never the packaging ones).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecurityPin {
    /// The Debian version whose queue this is, e.g. `5:7.0.15-1~deb12u10`
    /// (found in the pin's `debian` suites).
    pub debian: String,
    /// The queue's archive, e.g. `redis_7.0.15-1~deb12u10.debian.tar.xz`.
    pub archive: String,
    /// SHA-256 of that archive.
    pub sha256: String,
    /// Files of `debian/patches/` to apply, in this order.
    pub patches: Vec<QueuePatch>,
}

/// One patch of a security queue: its file name, or the name with the test
/// files of it that are left out (a test written for a newer Redis than the
/// pinned one; the fix itself is always applied whole, and the test is ported
/// in one of our patches).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(
    untagged,
    expecting = "a patch file name, or { name = \"…\", without = [\"tests/…\"], why = \"…\" }"
)]
pub enum QueuePatch {
    Whole(String),
    Trimmed(TrimmedPatch),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrimmedPatch {
    pub name: String,
    /// Files under `tests/` whose hunks are not applied.
    pub without: Vec<String>,
    /// Why, and where the test is ported instead.
    pub why: String,
}

impl From<&str> for QueuePatch {
    fn from(name: &str) -> Self {
        QueuePatch::Whole(name.to_string())
    }
}

impl QueuePatch {
    pub fn name(&self) -> &str {
        match self {
            QueuePatch::Whole(n) => n,
            QueuePatch::Trimmed(t) => &t.name,
        }
    }

    /// The files whose hunks are left out.
    pub fn without(&self) -> &[String] {
        match self {
            QueuePatch::Whole(_) => &[],
            QueuePatch::Trimmed(t) => &t.without,
        }
    }
}

/// A component vendored inside a pinned tree, for the SBOM.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BundledPin {
    pub name: String,
    /// Folder inside the tree; its tree hash goes into the SBOM.
    pub path: String,
    pub version: String,
    /// SPDX licence expression.
    pub license: String,
    /// What the version means when it is not a plain release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DebianPin {
    pub package: String,
    /// Suites to look in, e.g. `bookworm`, `bookworm-security`.
    pub suites: Vec<String>,
}

impl Pins {
    pub fn load(root: &Path) -> Result<Pins> {
        let path = root.join(PINS_FILE);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("reading {}: the pins file is missing", path.display()))?;
        Self::parse(&text).with_context(|| format!("{} is not a valid pins file", path.display()))
    }

    pub fn parse(text: &str) -> Result<Pins> {
        let pins: Pins = toml::from_str(text)?;
        if pins.redis.is_empty() {
            bail!("no [[redis]] pin");
        }
        if pins.targets.is_empty() {
            bail!("no [[target]]: name at least the one a release is built for by default");
        }
        for (i, t) in pins.targets.iter().enumerate() {
            let safe = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
            if t.name == ALL_TARGETS {
                bail!(
                    "[[target]] `{ALL_TARGETS}`: `dist --target {ALL_TARGETS}` means every target; name it otherwise"
                );
            }
            if t.name.is_empty() || !t.name.chars().all(safe) {
                bail!(
                    "[[target]] `{}`: a name ends file names; use letters, digits, `.`, `_` and `-` only",
                    t.name
                );
            }
            if !ARCHES.contains(&t.arch()) || !LIBCS.contains(&t.libc()) {
                bail!(
                    "[[target]] `{}`: zig = `{}` names no known architecture ({}) or C library (`-gnu.X.Y` or `-musl`)",
                    t.name,
                    t.zig,
                    ARCHES.join(", ")
                );
            }
            if pins.targets[..i].iter().any(|o| o.name == t.name) {
                bail!(
                    "[[target]] `{}` is listed twice: give each target its own name",
                    t.name
                );
            }
        }
        for p in pins
            .redis
            .iter()
            .chain(std::iter::once(&pins.openssl))
            .chain(pins.glibc.iter())
        {
            p.check()?;
        }
        Ok(pins)
    }

    /// The target named `name`; the first (the default) when `name` is `None`.
    pub fn target(&self, name: Option<&str>) -> Result<&Target> {
        let Some(name) = name else {
            return self
                .targets
                .first()
                .with_context(|| format!("no [[target]] in {PINS_FILE}"));
        };
        self.targets
            .iter()
            .find(|t| t.name == name)
            .with_context(|| {
                let known: Vec<_> = self.targets.iter().map(|t| t.name.as_str()).collect();
                format!(
                    "no target `{name}` in {PINS_FILE} (targets: {}); give one of them to --target",
                    known.join(", ")
                )
            })
    }

    /// The target a release's file is for, from its name
    /// (`portable-redis-7.0.15-x86_64-linux-musl-static.tar.gz`): the
    /// longest target name the name ends with, before its file suffix.
    pub fn target_of_release(&self, file: &str) -> Result<&Target> {
        let stem = [
            "-debug.tar.gz",
            ".tar.gz",
            ".intoto.json",
            ".buildinfo.json",
            ".cdx.json",
        ]
        .iter()
        .find_map(|s| file.strip_suffix(s))
        .unwrap_or(file);
        self.targets
            .iter()
            .filter(|t| stem.ends_with(&format!("-{}", t.name)))
            .max_by_key(|t| t.name.len())
            .with_context(|| {
                format!("{file} names no target of {PINS_FILE}: built by another checkout?")
            })
    }

    /// The Redis pin for `line` (`7.0`, `8.0`, or a full version); the first
    /// pin when `line` is `None`.
    pub fn redis(&self, line: Option<&str>) -> Result<&SourcePin> {
        let Some(line) = line else {
            return Ok(&self.redis[0]);
        };
        let found = self
            .redis
            .iter()
            .find(|p| p.version == line || p.version.starts_with(&format!("{line}.")));
        found.with_context(|| {
            let known: Vec<_> = self.redis.iter().map(|p| p.version.as_str()).collect();
            format!(
                "no Redis pin matches `{line}` in {PINS_FILE} (pinned: {}); add one with `cargo xtask upgrade redis VERSION`",
                known.join(", ")
            )
        })
    }
}

impl SourcePin {
    fn check(&self) -> Result<()> {
        self.release_epoch()?;
        if let Some(sec) = &self.security {
            if self.debian.is_none() {
                bail!(
                    "{}: `security` names a Debian queue, but the pin names no `debian` source package to find it in",
                    self.id()
                );
            }
            if upstream_version(&sec.debian) != self.version {
                bail!(
                    "{}: security queue `{}` is not a Debian revision of {}",
                    self.id(),
                    sec.debian,
                    self.version
                );
            }
            if sec.sha256.len() != 64 || !sec.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    "{}: security sha256 `{}` is not 64 hex digits",
                    self.id(),
                    sec.sha256
                );
            }
            if sec.patches.is_empty() {
                bail!("{}: the security queue lists no patch", self.id());
            }
            for p in &sec.patches {
                if let QueuePatch::Trimmed(t) = p {
                    if t.without.is_empty() || t.why.trim().is_empty() {
                        bail!(
                            "{}: security patch {} needs both `without` (the test files left \
                             out) and `why`, or is written as its plain name",
                            self.id(),
                            t.name
                        );
                    }
                    if let Some(f) = t.without.iter().find(|f| !f.starts_with("tests/")) {
                        bail!(
                            "{}: security patch {} leaves out {f}: only files under tests/ may be \
                             left out, a fix is applied whole",
                            self.id(),
                            t.name
                        );
                    }
                }
            }
        }
        if let Some(c) = &self.cargo_crate {
            if !c.contains('@') {
                bail!("{}: cargo-crate `{c}` must be `name@version`", self.name);
            }
        }
        Ok(())
    }

    /// `name-version`, for folder names and messages.
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// The release date as seconds since the epoch (midnight UTC).
    pub fn release_epoch(&self) -> Result<u64> {
        parse_date(&self.released).with_context(|| {
            format!(
                "{}: released = `{}` must be YYYY-MM-DD",
                self.name, self.released
            )
        })
    }

    pub fn patches_dir(&self, root: &Path) -> Option<PathBuf> {
        self.patches.as_ref().map(|p| root.join(p))
    }

    /// Major.minor, e.g. `7.0`.
    pub fn line(&self) -> String {
        self.version
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Days-from-civil (Howard Hinnant), for `YYYY-MM-DD` → Unix seconds.
fn parse_date(s: &str) -> Result<u64> {
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        bail!("not a date")
    };
    let (y, m, d): (i64, i64, i64) = (y.parse()?, m.parse()?, d.parse()?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        bail!("date out of range");
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days as u64 * 86_400)
}

/// `5:7.0.15-1~deb12u10` → `7.0.15`.
pub fn upstream_version(debian_version: &str) -> &str {
    let no_epoch = debian_version
        .split_once(':')
        .map_or(debian_version, |(_, v)| v);
    no_epoch.rsplit_once('-').map_or(no_epoch, |(u, _)| u)
}

#[cfg(test)]
mod tests;
