//! The Debian/Ubuntu source archive as an origin (and, for the emulator's
//! root, the binary packages of another architecture).
//!
//! The host's own apt sources say where its archive is. From their `deb`
//! entries we derive `deb-src` entries for the suites a pin names (same
//! address, same keyring, the suite's suffix such as `-security` choosing the
//! address), write them into a private folder, and run apt with private state
//! folders: the system apt configuration is never touched and no root is
//! needed. `apt-get --print-uris source PKG=VER` then gives the orig tarball's
//! address and SHA-256 from the signed index; only that file is fetched.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{
    fsutil,
    pins::{upstream_version, DebianPin},
};

/// One `deb` entry of the host's apt configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptEntry {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub signed_by: Option<String>,
}

/// Parse a one-line `sources.list` file; only `deb` lines are kept.
pub fn parse_one_line(text: &str) -> Vec<AptEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut rest: Vec<&str> = words.collect();
        let mut signed_by = None;
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            let mut opts = Vec::new();
            while let Some(w) = rest.first().copied() {
                rest.remove(0);
                opts.push(w.trim_start_matches('[').trim_end_matches(']').to_string());
                if w.ends_with(']') {
                    break;
                }
            }
            signed_by = opts
                .iter()
                .find_map(|o| o.strip_prefix("signed-by=").map(str::to_string));
        }
        if rest.len() < 2 {
            continue;
        }
        out.push(AptEntry {
            uris: vec![rest[0].to_string()],
            suites: vec![rest[1].to_string()],
            components: rest[2..].iter().map(|s| s.to_string()).collect(),
            signed_by,
        });
    }
    out
}

/// Parse a deb822 `.sources` file; only stanzas whose Types include `deb`.
pub fn parse_deb822(text: &str) -> Vec<AptEntry> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(last) = fields.last_mut() {
                    last.1.push('\n');
                    last.1.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let words = |k: &str| {
            get(k)
                .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        if !words("types").iter().any(|t| t == "deb") || get("enabled").is_some_and(|e| e == "no") {
            continue;
        }
        let entry = AptEntry {
            uris: words("uris"),
            suites: words("suites"),
            components: words("components"),
            signed_by: get("signed-by"),
        };
        if !entry.uris.is_empty() && !entry.suites.is_empty() {
            out.push(entry);
        }
    }
    out
}

/// The host's `deb` entries from /etc/apt.
pub fn host_entries(etc_apt: &Path) -> Result<Vec<AptEntry>> {
    let mut out = Vec::new();
    let list = etc_apt.join("sources.list");
    if let Ok(text) = fs::read_to_string(&list) {
        out.extend(parse_one_line(&text));
    }
    if let Ok(dir) = fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let text = fs::read_to_string(&f).unwrap_or_default();
            match f.extension().and_then(|e| e.to_str()) {
                Some("list") => out.extend(parse_one_line(&text)),
                Some("sources") => out.extend(parse_deb822(&text)),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// `bookworm-security` → (`bookworm`, `-security`).
fn split_suite(s: &str) -> (&str, &str) {
    match s.find('-') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// deb822 text with `deb-src` stanzas for `suites`, derived from the host's
/// entries of its own release (`codename`): each wanted suite takes the
/// address, components and keyring of the host suite with the same suffix.
pub fn derive_deb_src(host: &[AptEntry], codename: &str, suites: &[String]) -> Result<String> {
    derive_entries(host, codename, suites, "Types: deb-src\n")
}

/// deb822 text with `deb` stanzas for `suites` (as [`derive_deb_src`]), for
/// the binary packages of architecture `arch` (Debian's name: `arm64`).
pub fn derive_deb(
    host: &[AptEntry],
    codename: &str,
    suites: &[String],
    arch: &str,
) -> Result<String> {
    derive_entries(
        host,
        codename,
        suites,
        &format!("Types: deb\nArchitectures: {arch}\n"),
    )
}

/// The stanzas for `suites`, each starting with `head`.
fn derive_entries(
    host: &[AptEntry],
    codename: &str,
    suites: &[String],
    head: &str,
) -> Result<String> {
    let mut stanzas = Vec::new();
    for want in suites {
        let (_, suffix) = split_suite(want);
        let matching = host.iter().find(|e| {
            e.suites.iter().any(|s| {
                let (code, suf) = split_suite(s);
                code == codename && suf == suffix
            })
        });
        let Some(e) = matching else { continue };
        let mut s = format!(
            "{head}URIs: {}\nSuites: {want}\nComponents: {}\n",
            e.uris.join(" "),
            e.components.join(" ")
        );
        if let Some(k) = &e.signed_by {
            s.push_str(&format!("Signed-By: {k}\n"));
        }
        stanzas.push(s);
    }
    if stanzas.is_empty() {
        bail!(
            "the host's apt sources have no entries for its release `{codename}` to derive {} from",
            suites.join(", ")
        );
    }
    Ok(stanzas.join("\n"))
}

/// The release codename of the host (`VERSION_CODENAME` in /etc/os-release).
pub fn host_codename(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|l| {
        l.strip_prefix("VERSION_CODENAME=")
            .map(|v| v.trim_matches('"').to_string())
    })
}

/// Versions of source package `package` in `apt-cache showsrc` output.
pub fn showsrc_versions(text: &str, package: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
        };
        if field("Package:").as_deref() == Some(package) {
            if let Some(v) = field("Version:") {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// One line of `apt-get --print-uris source`: `'URI' NAME SIZE SHA256:HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub uri: String,
    pub name: String,
    pub sha256: String,
}

pub fn parse_print_uris(text: &str) -> Vec<SourceFile> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix('\'')?;
            let (uri, rest) = rest.split_once('\'')?;
            let mut words = rest.split_whitespace();
            let name = words.next()?.to_string();
            let _size = words.next()?;
            let sha256 = words
                .find_map(|w| w.strip_prefix("SHA256:"))?
                .to_ascii_lowercase();
            Some(SourceFile {
                uri: uri.to_string(),
                name,
                sha256,
            })
        })
        .collect()
}

/// The host's apt entries and its release's codename.
fn host_apt() -> Result<(Vec<AptEntry>, String)> {
    let codename = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| host_codename(&t))
        .context("/etc/os-release names no VERSION_CODENAME: not a Debian or Ubuntu host")?;
    Ok((host_entries(Path::new("/etc/apt"))?, codename))
}

/// The host's Debian/Ubuntu source archive, queried with private state
/// folders below `state`; fetched files go to `downloads`.
pub struct AptOrigin<'a> {
    pub state: &'a Path,
    pub downloads: &'a Path,
}

/// The source index of one package in a pin's suites, after `apt-get update`.
pub struct AptIndex<'a> {
    origin: &'a AptOrigin<'a>,
    pin: DebianPin,
    options: Vec<String>,
}

impl AptOrigin<'_> {
    /// Derive `deb-src` entries for `pin`'s suites and update their index.
    pub fn index(&self, pin: &DebianPin) -> Result<AptIndex<'_>> {
        let (host, codename) = host_apt()?;
        let sources = derive_deb_src(&host, &codename, &pin.suites)?;
        // One private state per set of suites: the OpenSSL and the Redis pin
        // are looked up at once (two threads of one build) in different
        // suites, and must not share a sources list.
        let options = self.update(&pin.suites.join("+"), &sources, &[])?;
        Ok(AptIndex {
            origin: self,
            pin: pin.clone(),
            options,
        })
    }

    /// A private apt state `name` below `state` with the deb822 `sources`,
    /// its index updated; the options that select it (and `extra`).
    fn update(&self, name: &str, sources: &str, extra: &[String]) -> Result<Vec<String>> {
        let sh = Shell::new()?;
        let state = self.state.join(name);
        let parts = state.join("sources.list.d");
        let lists = state.join("lists");
        let cache = state.join("cache");
        for d in [
            &parts,
            &lists.join("partial"),
            &cache.join("archives/partial"),
        ] {
            fs::create_dir_all(d)?;
        }
        fsutil::write_atomic(
            &parts.join("portable-redis-src.sources"),
            sources.as_bytes(),
        )?;
        let mut opts = vec![
            format!("Dir::Etc::SourceParts={}", parts.display()),
            "Dir::Etc::SourceList=/dev/null".to_string(),
            format!("Dir::State::Lists={}", lists.display()),
            format!("Dir::Cache={}", cache.display()),
            "Debug::NoLocking=1".to_string(),
            "Acquire::Languages=none".to_string(),
        ];
        opts.extend(extra.iter().cloned());
        if is_root() {
            // Our private folders are not writable by apt's `_apt` user.
            opts.push("APT::Sandbox::User=root".to_string());
        }
        let options: Vec<String> = opts
            .iter()
            .flat_map(|o| ["-o".to_string(), o.clone()])
            .collect();
        let o = &options;
        cmd!(sh, "apt-get {o...} -qq update")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("apt-get update of the derived entries ({name})"))?;
        Ok(options)
    }

    /// The orig tarball of `pin`'s package at upstream `version`, fetched
    /// into `downloads` with its SHA-256 checked against the signed index.
    pub fn fetch(&self, pin: &DebianPin, version: &str) -> Result<(PathBuf, String)> {
        let index = self.index(pin)?;
        let deb_version = index.newest_of(version)?;
        let spec = index.spec(&deb_version);
        let files = index.files(&deb_version)?;
        let prefix = format!("{}_{version}.orig.tar.", pin.package);
        let Some(orig) = files
            .iter()
            .find(|f| f.name.starts_with(&prefix) && !f.name.ends_with(".asc"))
        else {
            bail!("apt-get --print-uris source {spec} lists no {prefix}* file");
        };
        let dest = index.download(orig)?;
        Ok((dest, format!("{} from {spec}", orig.name)))
    }
}

impl AptIndex<'_> {
    /// Every version of the package the suites hold, newest first.
    pub fn versions(&self) -> Result<Vec<String>> {
        let sh = Shell::new()?;
        let o = &self.options;
        let package = &self.pin.package;
        let showsrc = cmd!(sh, "apt-cache {o...} showsrc {package}")
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_default();
        let mut versions = showsrc_versions(&showsrc, package);
        versions.sort_by(|a, b| compare_versions(b, a));
        Ok(versions)
    }

    /// The newest Debian revision of upstream `version`.
    pub fn newest_of(&self, version: &str) -> Result<String> {
        let versions = self.versions()?;
        match versions.iter().find(|v| upstream_version(v) == version) {
            Some(v) => Ok(v.clone()),
            None => bail!(
                "{} in {} has versions {}; none is upstream {version}",
                self.pin.package,
                self.pin.suites.join(", "),
                if versions.is_empty() {
                    "(none)".to_string()
                } else {
                    versions.join(", ")
                }
            ),
        }
    }

    /// `package=version`, as apt takes it.
    pub fn spec(&self, deb_version: &str) -> String {
        format!("{}={deb_version}", self.pin.package)
    }

    /// The files of the source package at `deb_version`, from the signed index.
    pub fn files(&self, deb_version: &str) -> Result<Vec<SourceFile>> {
        let sh = Shell::new()?;
        let o = &self.options;
        let spec = self.spec(deb_version);
        let uris = cmd!(sh, "apt-get {o...} --print-uris -qq source {spec}")
            .quiet()
            .ignore_stderr()
            .read()
            .with_context(|| format!("apt-get --print-uris source {spec}"))?;
        let files = parse_print_uris(&uris);
        if files.is_empty() {
            bail!(
                "apt-get --print-uris source {spec} lists no files: {} in {} has no such version",
                self.pin.package,
                self.pin.suites.join(", ")
            );
        }
        Ok(files)
    }

    /// Fetch one file of the index into the downloads folder, checked
    /// against the SHA-256 the signed index gives.
    pub fn download(&self, file: &SourceFile) -> Result<PathBuf> {
        let dest = self.origin.downloads.join(&file.name);
        crate::net::download(&file.uri, &dest, Some(&file.sha256))?;
        Ok(dest)
    }
}

/// Debian's version order (`dpkg --compare-versions`): epoch, then the
/// upstream version, then the revision, each part compared as runs of
/// non-digits (letters before other characters, `~` before everything, even
/// the end) and runs of digits (as numbers).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.bytes().all(|b| b.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, upstream, revision)
    }
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(c) => i32::from(c) + 256,
        }
    }
    fn part(a: &str, b: &str) -> std::cmp::Ordering {
        let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
        while !a.is_empty() || !b.is_empty() {
            // Non-digit runs, character by character.
            loop {
                let (ca, cb) = (a.first().copied(), b.first().copied());
                let da = ca.is_none_or(|c| c.is_ascii_digit());
                let db = cb.is_none_or(|c| c.is_ascii_digit());
                if da && db {
                    break;
                }
                let (oa, ob) = (
                    if da { 0 } else { order(ca) },
                    if db { 0 } else { order(cb) },
                );
                if oa != ob {
                    return oa.cmp(&ob);
                }
                if !da {
                    a = &a[1..];
                }
                if !db {
                    b = &b[1..];
                }
            }
            // Digit runs, as numbers.
            let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
            let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let strip = |d: &[u8]| {
                let s = std::str::from_utf8(d).unwrap_or("");
                s.trim_start_matches('0').to_string()
            };
            let (sa, sb) = (strip(&a[..na]), strip(&b[..nb]));
            let o = sa.len().cmp(&sb.len()).then_with(|| sa.cmp(&sb));
            if o.is_ne() {
                return o;
            }
            a = &a[na..];
            b = &b[nb..];
        }
        std::cmp::Ordering::Equal
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| part(ua, ub))
        .then_with(|| part(ra, rb))
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|v| v.split_whitespace().nth(1) == Some("0"))
            })
        })
        .unwrap_or(false)
}

mod packages;
pub use packages::{BinaryIndex, Stanza};

#[cfg(test)]
mod tests;
