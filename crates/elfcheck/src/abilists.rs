//! The glibc ABI as zig ships it (`lib/libc/glibc/abilists`): for every
//! symbol, the libraries, targets and symbol versions that export it. zig
//! builds its glibc stub libraries from this file; verify reads it the same way
//! (zig's `src/libs/glibc.zig`, `loadMetaData` and `buildSharedObjects`) to
//! answer "does `lib` of glibc X export `symbol@version` on this target?"
//! without needing an old system.
//!
//! Format (integers little-endian): `u8` library count, then NUL-terminated
//! names (`c`, `m`, `ld`, …); `u8` version count, then `major minor patch`
//! bytes, ascending; `u8` target count, then NUL-terminated triples; then the
//! function inclusions (`u16` count) and the object inclusions (`u16` count).
//! An inclusion is: the symbol name (only before its first inclusion), a
//! ULEB128 target bit set, (objects only: a ULEB128 size), a library index
//! byte whose top bit marks the symbol's last inclusion, and version index
//! bytes whose top bit marks the last one. `lib` of glibc X exports
//! `symbol@GLIBC_V` when an inclusion for that library and target lists V and
//! V <= X: that is the rule zig's stubs follow.

use std::{collections::HashMap, fs, path::Path};

use anyhow::{bail, Context, Result};

use crate::{policy::Policy, version::GlibcVersion};

/// Shared object names of the libraries in the file (zig's `libs` table);
/// the loader's (`ld`) depends on the target and comes from the policy.
fn soname(lib: &str, loader: &str) -> Option<String> {
    Some(
        match lib {
            "c" => "libc.so.6",
            "m" => "libm.so.6",
            "ld" => loader,
            "pthread" => "libpthread.so.0",
            "dl" => "libdl.so.2",
            "rt" => "librt.so.1",
            "util" => "libutil.so.1",
            "resolv" => "libresolv.so.2",
            _ => return None,
        }
        .to_string(),
    )
}

/// One target's glibc ABI at one glibc version.
#[derive(Debug, Clone)]
pub struct GlibcAbi {
    pub target: String,
    pub glibc: GlibcVersion,
    /// Where it was read from (the report's `reference`).
    pub source: String,
    /// Shared object names, in the file's library order.
    pub libraries: Vec<String>,
    /// Every version name up to and including `glibc` (`GLIBC_2.2.5`, …).
    pub versions: Vec<String>,
    /// symbol → (library index, version index) pairs at or below `glibc`.
    symbols: HashMap<String, Vec<(u8, u8)>>,
}

impl GlibcAbi {
    /// Read `path` for the policy's target and glibc. A static policy needs
    /// no glibc: its ABI is empty, and `path` is not read.
    pub fn load(path: &Path, policy: &Policy) -> Result<GlibcAbi> {
        let Some(glibc) = policy.glibc else {
            return Ok(GlibcAbi {
                target: policy.target.clone(),
                glibc: GlibcVersion::new(0, 0),
                source: "none (a static target needs no glibc)".into(),
                libraries: Vec::new(),
                versions: Vec::new(),
                symbols: HashMap::new(),
            });
        };
        let data = fs::read(path)
            .with_context(|| format!("reading zig's glibc ABI list {}", path.display()))?;
        let mut abi = GlibcAbi::parse(&data, &policy.target, glibc, policy.loader_soname())
            .with_context(|| format!("{} is not a zig glibc abilists file", path.display()))?;
        abi.source = path.display().to_string();
        Ok(abi)
    }

    /// Read an abilists file for `target` (e.g. `x86_64-linux-gnu`) at
    /// `glibc`, naming the `ld` library `loader` (`ld-linux-x86-64.so.2`).
    pub fn parse(data: &[u8], target: &str, glibc: GlibcVersion, loader: &str) -> Result<GlibcAbi> {
        let mut r = Reader { data, pos: 0 };
        let libs: Vec<String> = (0..r.u8()?).map(|_| r.cstr()).collect::<Result<_>>()?;
        let versions: Vec<[u8; 3]> = (0..r.u8()?)
            .map(|_| Ok([r.u8()?, r.u8()?, r.u8()?]))
            .collect::<Result<_>>()?;
        let targets: Vec<String> = (0..r.u8()?).map(|_| r.cstr()).collect::<Result<_>>()?;

        let Some(target_index) = targets.iter().position(|t| t == target) else {
            bail!("no target {target} (it has {})", targets.join(", "));
        };
        if target_index >= 64 {
            bail!("target index {target_index} does not fit the 64-bit target set");
        }
        let Some(max_version) = versions.iter().position(|v| version_of(*v) == glibc) else {
            bail!("glibc {glibc} is not one of its versions");
        };
        let mut libraries = Vec::new();
        for l in &libs {
            match soname(l, loader) {
                Some(s) => libraries.push(s),
                None => bail!("unknown glibc library `{l}`"),
            }
        }

        let mut symbols: HashMap<String, Vec<(u8, u8)>> = HashMap::new();
        for objects in [false, true] {
            let count = r.u16()?;
            let mut name: Option<String> = None;
            for _ in 0..count {
                let sym = match name.take() {
                    Some(n) => n,
                    None => r.cstr()?,
                };
                let target_set = r.uleb()?;
                if objects {
                    r.uleb()?;
                }
                let lib_byte = r.u8()?;
                let last = lib_byte & 0x80 != 0;
                let lib = lib_byte & 0x7f;
                if usize::from(lib) >= libs.len() {
                    bail!("library index {lib} out of range at byte {}", r.pos);
                }
                let applies = target_set & (1u64 << target_index) != 0;
                loop {
                    let b = r.u8()?;
                    let ver = b & 0x7f;
                    if usize::from(ver) >= versions.len() {
                        bail!("version index {ver} out of range at byte {}", r.pos);
                    }
                    if applies && usize::from(ver) <= max_version {
                        let entry = symbols.entry(sym.clone()).or_default();
                        if !entry.contains(&(lib, ver)) {
                            entry.push((lib, ver));
                        }
                    }
                    if b & 0x80 != 0 {
                        break;
                    }
                }
                if !last {
                    name = Some(sym);
                }
            }
        }
        Ok(GlibcAbi {
            target: target.to_string(),
            glibc,
            source: String::new(),
            libraries,
            versions: versions[..=max_version]
                .iter()
                .map(|v| version_name(*v))
                .collect(),
            symbols,
        })
    }

    /// Is `library` one of glibc's (by shared object name)?
    pub fn is_glibc_library(&self, library: &str) -> bool {
        self.libraries.iter().any(|l| l == library)
    }

    /// Does `library` export `symbol@version`?
    pub fn exports(&self, library: &str, symbol: &str, version: &str) -> bool {
        self.definitions(symbol)
            .any(|(l, v)| l == library && v == version)
    }

    /// Every (library, version) that exports `symbol`.
    pub fn definitions<'a>(
        &'a self,
        symbol: &str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.symbols
            .get(symbol)
            .into_iter()
            .flatten()
            .map(|(l, v)| {
                (
                    self.libraries[usize::from(*l)].as_str(),
                    self.versions[usize::from(*v)].as_str(),
                )
            })
    }

    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }
}

/// `GLIBC_2.2.5`, `GLIBC_2.11`.
fn version_name(v: [u8; 3]) -> String {
    if v[2] == 0 {
        format!("GLIBC_{}.{}", v[0], v[1])
    } else {
        format!("GLIBC_{}.{}.{}", v[0], v[1], v[2])
    }
}

fn version_of(v: [u8; 3]) -> GlibcVersion {
    GlibcVersion {
        major: v[0].into(),
        minor: v[1].into(),
        patch: v[2].into(),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8> {
        let Some(b) = self.data.get(self.pos) else {
            bail!("truncated at byte {}", self.pos);
        };
        self.pos += 1;
        Ok(*b)
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }

    fn uleb(&mut self) -> Result<u64> {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let b = self.u8()?;
            if shift >= 64 {
                bail!("ULEB128 too long at byte {}", self.pos);
            }
            value |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
    }

    fn cstr(&mut self) -> Result<String> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let Some(end) = rest.iter().position(|b| *b == 0) else {
            bail!("unterminated name at byte {}", self.pos);
        };
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2_11: GlibcVersion = GlibcVersion::new(2, 11);
    const LD: &str = "ld-linux-x86-64.so.2";

    /// A file in the same format: libraries c and rt, versions 2.2.5, 2.11,
    /// 2.17, targets x86-linux-gnu and x86_64-linux-gnu.
    fn sample() -> Vec<u8> {
        let mut d = vec![2];
        d.extend(b"c\0rt\0");
        d.push(3);
        d.extend([2, 2, 5, 2, 11, 0, 2, 17, 0]);
        d.push(2);
        d.extend(b"x86-linux-gnu\0x86_64-linux-gnu\0");
        // functions: clock_gettime in rt@2.2.5 and c@2.17 (x86_64 only);
        // memcpy in c@2.2.5 for both targets.
        d.extend(3u16.to_le_bytes());
        d.extend(b"clock_gettime\0");
        d.extend([0b10, 1, 0x80]); // x86_64, rt, [2.2.5]
        d.extend([0b10, 0x80, 0x82]); // x86_64, c (last), [2.17]
        d.extend(b"memcpy\0");
        d.extend([0b11, 0x80, 0x80]);
        // objects: stdout in c@2.2.5, size 8.
        d.extend(1u16.to_le_bytes());
        d.extend(b"stdout\0");
        d.extend([0b10, 8, 0x80, 0x80]);
        d
    }

    #[test]
    fn a_symbol_exists_only_in_the_libraries_and_versions_it_lists() {
        let abi = GlibcAbi::parse(&sample(), "x86_64-linux-gnu", V2_11, LD).unwrap();
        assert_eq!(abi.versions, ["GLIBC_2.2.5", "GLIBC_2.11"]);
        assert!(abi.exports("librt.so.1", "clock_gettime", "GLIBC_2.2.5"));
        assert!(!abi.exports("libc.so.6", "clock_gettime", "GLIBC_2.2.5"));
        // clock_gettime@GLIBC_2.17 in libc is newer than 2.11.
        assert!(!abi.exports("libc.so.6", "clock_gettime", "GLIBC_2.17"));
        assert!(abi.exports("libc.so.6", "memcpy", "GLIBC_2.2.5"));
        assert!(abi.exports("libc.so.6", "stdout", "GLIBC_2.2.5"));
        let newer =
            GlibcAbi::parse(&sample(), "x86_64-linux-gnu", GlibcVersion::new(2, 17), LD).unwrap();
        assert!(newer.exports("libc.so.6", "clock_gettime", "GLIBC_2.17"));
    }

    #[test]
    fn unknown_targets_versions_and_truncation_are_errors() {
        let e = GlibcAbi::parse(&sample(), "riscv64-linux-gnu", V2_11, LD).unwrap_err();
        assert!(e.to_string().contains("no target riscv64-linux-gnu"), "{e}");
        let e = GlibcAbi::parse(&sample(), "x86_64-linux-gnu", GlibcVersion::new(2, 12), LD)
            .unwrap_err();
        assert!(e.to_string().contains("2.12"), "{e}");
        let data = sample();
        let e =
            GlibcAbi::parse(&data[..data.len() - 3], "x86_64-linux-gnu", V2_11, LD).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
