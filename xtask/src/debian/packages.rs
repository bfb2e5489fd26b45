//! Binary packages from the archive: the C library of another architecture
//! for the emulator's root, and Debian's own build of a Redis line with the
//! shared libraries it needs, for the bench to measure against.

use std::{collections::BTreeSet, fs, path::PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::{derive_deb, host_apt, parse_print_uris, AptOrigin};

/// One package's stanza of `apt-cache show`: what the closure needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub package: String,
    pub version: String,
    /// `Multi-Arch: same`: a package of one architecture's shared files
    /// (libraries), installable beside the same package of another.
    pub multi_arch_same: bool,
    /// The first choice of each `Pre-Depends` and `Depends` entry, without
    /// its version and architecture qualifiers.
    pub depends: Vec<String>,
}

/// The stanzas of `apt-cache show` output, in order.
pub fn parse_show(text: &str) -> Vec<Stanza> {
    text.split("\n\n")
        .filter_map(|stanza| {
            // A field may go on over lines that start with a space.
            let stanza = stanza.replace("\n ", " ");
            let field = |k: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            };
            let depends = ["Pre-Depends:", "Depends:"]
                .iter()
                .filter_map(|k| field(k))
                .flat_map(|list| {
                    list.split(',')
                        .filter_map(|entry| {
                            let first = entry.split('|').next()?;
                            let name = first.split(['(', ' ']).find(|w| !w.is_empty())?;
                            Some(name.split(':').next().unwrap_or(name).trim().to_string())
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            Some(Stanza {
                package: field("Package:")?,
                version: field("Version:")?,
                multi_arch_same: field("Multi-Arch:").as_deref() == Some("same"),
                depends,
            })
        })
        .collect()
}

/// The packages `roots` need at run time: the roots, then, breadth first,
/// every dependency that is a shared-library package (`Multi-Arch: same`),
/// followed through its own dependencies. Tools, scripts and the
/// maintainer scripts' helpers (`adduser`, `debconf`) are left out: a
/// program started directly needs only its libraries. `show` gives the
/// stanza of each name, in the order asked.
pub fn library_closure(
    roots: &[String],
    mut show: impl FnMut(&[String]) -> Result<Vec<Stanza>>,
) -> Result<Vec<Stanza>> {
    let mut seen: BTreeSet<String> = roots.iter().cloned().collect();
    let mut out = Vec::new();
    let mut wave: Vec<String> = roots.to_vec();
    let mut is_root = true;
    while !wave.is_empty() {
        let stanzas = show(&wave)?;
        let mut next = Vec::new();
        for s in stanzas {
            if !is_root && !s.multi_arch_same {
                continue;
            }
            for d in &s.depends {
                if seen.insert(d.clone()) {
                    next.push(d.clone());
                }
            }
            out.push(s);
        }
        wave = next;
        is_root = false;
    }
    Ok(out)
}

impl AptOrigin<'_> {
    /// The newest binary packages of architecture `arch` (Debian's name) in
    /// the host's own release and its updates, fetched into `downloads`,
    /// each checked against the SHA-256 of the signed index.
    pub fn binary_packages(&self, arch: &str, packages: &[String]) -> Result<Vec<PathBuf>> {
        let (_, codename) = host_apt()?;
        let suites = ["", "-updates", "-security"].map(|s| format!("{codename}{s}"));
        self.binary_index(&suites, arch)?.download(packages)
    }

    /// The index of `arch`'s binary packages in `suites` (named as a pin
    /// names them: `forky`, `bookworm-security`), in a private apt state,
    /// updated once: what it lists and what it downloads agree.
    pub fn binary_index(&self, suites: &[String], arch: &str) -> Result<BinaryIndex<'_>> {
        let (host, codename) = host_apt()?;
        let sources = derive_deb(&host, &codename, suites, arch)?;
        let arch_opts = [
            format!("APT::Architecture={arch}"),
            format!("APT::Architectures={arch}"),
        ];
        let name = format!("{}-{arch}", suites.join("+"));
        let options = self.update(&name, &sources, &arch_opts)?;
        Ok(BinaryIndex {
            origin: self,
            options,
            name,
            place: format!("{arch} in {}", suites.join(", ")),
        })
    }
}

/// One architecture's binary packages in some suites, its index updated.
pub struct BinaryIndex<'a> {
    origin: &'a AptOrigin<'a>,
    options: Vec<String>,
    name: String,
    /// Said in errors: `amd64 in forky, sid`.
    place: String,
}

impl BinaryIndex<'_> {
    /// `roots` and the shared-library packages they need (see
    /// [`library_closure`]). A dependency the index cannot show (a virtual
    /// package) is left out: it holds no file; a root it cannot show is an
    /// error.
    pub fn library_closure(&self, roots: &[String]) -> Result<Vec<Stanza>> {
        let sh = Shell::new()?;
        let o = &self.options;
        let got = library_closure(roots, |names| {
            // apt-cache exits 0 when it shows some of the names: the
            // stanzas say which.
            let out = cmd!(sh, "apt-cache {o...} show --no-all-versions {names...}")
                .quiet()
                .ignore_status()
                .output()
                .with_context(|| format!("running apt-cache show ({})", self.place))?;
            Ok(parse_show(&String::from_utf8_lossy(&out.stdout)))
        })?;
        let missing: Vec<&String> = roots
            .iter()
            .filter(|r| !got.iter().any(|s| &s.package == *r))
            .collect();
        if !missing.is_empty() {
            bail!(
                "the index of {} has no package {}: check the pin's `debian.suites` in                  vendor/sources.toml",
                self.place,
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(got)
    }

    /// `packages` (each `name` or `name=version`) fetched into the
    /// origin's downloads, each checked against the SHA-256 of the signed
    /// index.
    pub fn download(&self, packages: &[String]) -> Result<Vec<PathBuf>> {
        // `apt-get download` prints nothing for a file that its working
        // folder already holds: it runs in an empty one.
        let cwd = self.origin.state.join(&self.name).join("download");
        if cwd.exists() {
            fs::remove_dir_all(&cwd).with_context(|| format!("removing {}", cwd.display()))?;
        }
        fs::create_dir_all(&cwd).with_context(|| format!("creating {}", cwd.display()))?;
        let sh = Shell::new()?;
        sh.change_dir(&cwd);
        let o = &self.options;
        let uris = cmd!(sh, "apt-get {o...} --print-uris -qq download {packages...}")
            .quiet()
            .read()
            .with_context(|| {
                format!(
                    "apt-get download --print-uris {} ({})",
                    packages.join(" "),
                    self.place
                )
            })?;
        let files = parse_print_uris(&uris);
        if files.len() != packages.len() {
            bail!(
                "apt lists {} files with a SHA-256 for the packages {} ({}; the host's archive                  must serve them and list SHA-256 hashes): {uris}",
                files.len(),
                packages.join(", "),
                self.place
            );
        }
        files
            .iter()
            .map(|f| {
                let dest = self.origin.downloads.join(&f.name);
                crate::net::download(&f.uri, &dest, Some(&f.sha256))?;
                Ok(dest)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = "Package: redis-tools\nVersion: 5:8.0.6-3\nInstalled-Size: 4321\nDepends: adduser, libatomic1 (>= 4.8),\n libc6 (>= 2.43), libssl3t64 (>= 3.0.0) | libssl3, libsystemd0\nDescription: x\n\nPackage: libc6\nVersion: 2.42-2\nMulti-Arch: same\nPre-Depends: libgcc-s1:amd64\nDepends: libc-gconv-modules-extra\n";

    #[test]
    fn stanzas_keep_the_first_choice_of_each_dependency() {
        let s = parse_show(SHOW);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].package, "redis-tools");
        assert_eq!(s[0].version, "5:8.0.6-3");
        assert!(!s[0].multi_arch_same);
        assert_eq!(
            s[0].depends,
            [
                "adduser",
                "libatomic1",
                "libc6",
                "libssl3t64",
                "libsystemd0"
            ]
        );
        assert!(s[1].multi_arch_same);
        assert_eq!(s[1].depends, ["libgcc-s1", "libc-gconv-modules-extra"]);
    }

    fn stanza(name: &str, same: bool, deps: &[&str]) -> Stanza {
        Stanza {
            package: name.into(),
            version: "1".into(),
            multi_arch_same: same,
            depends: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    /// The roots' libraries are followed, their tools are not, and a
    /// package named twice is asked for once.
    #[test]
    fn the_closure_follows_libraries_only() {
        let archive = [
            stanza("redis-server", false, &["redis-tools"]),
            stanza("redis-tools", false, &["adduser", "libc6", "libssl3t64"]),
            stanza("adduser", false, &["passwd"]),
            stanza("libc6", true, &["libgcc-s1"]),
            stanza("libssl3t64", true, &["libc6", "openssl-provider-legacy"]),
            stanza("openssl-provider-legacy", false, &["libssl3t64"]),
            stanza("libgcc-s1", true, &["libc6"]),
        ];
        let mut asked = Vec::new();
        let got = library_closure(&["redis-server".into(), "redis-tools".into()], |names| {
            asked.extend(names.to_vec());
            Ok(names
                .iter()
                .map(|n| archive.iter().find(|s| &s.package == n).unwrap().clone())
                .collect())
        })
        .unwrap();
        let names: Vec<&str> = got.iter().map(|s| s.package.as_str()).collect();
        assert_eq!(
            names,
            [
                "redis-server",
                "redis-tools",
                "libc6",
                "libssl3t64",
                "libgcc-s1"
            ]
        );
        let mut unique = asked.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), asked.len(), "{asked:?}");
        assert!(!asked.contains(&"passwd".to_string()));
    }
}
