//! The security queue of a pin: the CVE patches a distribution carries for
//! the very upstream version pinned (`security` in `vendor/sources.toml`).
//!
//! The queue's archive (Debian's `*.debian.tar.xz`) is a pinned input like a
//! source tree: it is fetched through the same origins (the local cache, a
//! mirror folder, the Debian source archive through apt with private state),
//! accepted only with the pinned SHA-256, and only the patches the pin names
//! are read from it; packaging patches are never applied. They are applied
//! after the pin's own series by the same applier (see `patch.rs`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{
    archive,
    debian::AptOrigin,
    patch::{self, Queue, Series},
    pins::{QueuePatch, SecurityPin, SourcePin},
    project::Project,
    treehash,
    vendor::VendorOptions,
};

/// Folder of a Debian source package's patches inside its archive.
pub const DEBIAN_PATCHES: &str = "debian/patches";

/// The pin's own series (none when it names no `patches` folder) followed
/// by its security queue (when it has one).
pub fn series(project: &Project, pin: &SourcePin, opts: &VendorOptions) -> Result<Series> {
    let mut series = match pin.patches_dir(&project.root) {
        Some(dir) => Series::load(&dir)?,
        None => Series::empty(&project.root),
    };
    series.security = queue(project, pin, opts)?;
    Ok(series)
}

/// The pin's security queue, read from its verified archive.
pub fn queue(project: &Project, pin: &SourcePin, opts: &VendorOptions) -> Result<Option<Queue>> {
    let Some(sec) = &pin.security else {
        return Ok(None);
    };
    let archive = obtain(project, pin, sec, opts)?;
    read_queue(&archive, sec)
        .with_context(|| format!("the {} security queue ({})", pin.id(), sec.debian))
        .map(Some)
}

/// The named patches of `archive` (already checked against the pin).
pub fn read_queue(archive: &Path, sec: &SecurityPin) -> Result<Queue> {
    let prefix = format!("{DEBIAN_PATCHES}/");
    let files = archive::read_files(archive, |p| p.starts_with(&prefix))?;
    let mut patches = Vec::new();
    for entry in &sec.patches {
        let name = entry.name();
        let member = format!("{prefix}{name}");
        let bytes = files.get(&member).with_context(|| {
            let mut held: Vec<&str> = files
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|k| *k != "series")
                .collect();
            held.sort();
            format!(
                "{} has no {member}, which vendor/sources.toml names; it holds: {}",
                sec.archive,
                held.join(", ")
            )
        })?;
        let text = String::from_utf8(bytes.clone())
            .with_context(|| format!("{member} in {} is not UTF-8 text", sec.archive))?;
        let mut p = patch::parse(name, &text)?;
        for file in entry.without() {
            if !p.files.iter().any(|f| f.path() == file) {
                bail!(
                    "{member} in {} does not change {file}, which vendor/sources.toml leaves \
                     out of it: remove it from `without`",
                    sec.archive
                );
            }
        }
        p.files
            .retain(|f| !entry.without().iter().any(|w| w == f.path()));
        p.left_out = entry.without().to_vec();
        patches.push(p);
    }
    Ok(Queue {
        archive: sec.archive.clone(),
        debian: sec.debian.clone(),
        folder: DEBIAN_PATCHES.to_string(),
        patches,
    })
}

/// The queue's archive from the first origin that has it with the pinned hash.
fn obtain(
    project: &Project,
    pin: &SourcePin,
    sec: &SecurityPin,
    opts: &VendorOptions,
) -> Result<PathBuf> {
    let mut failures = Vec::new();
    let label = format!("{} security queue", pin.id());
    let matches = |path: &Path| -> Result<bool> {
        Ok(path.is_file() && treehash::sha256_file(path)? == sec.sha256)
    };
    // (a) the downloads cache.
    let cached = project.downloads().join(&sec.archive);
    if matches(&cached)? {
        return Ok(cached);
    }
    if cached.is_file() {
        failures.push(format!(
            "cache: {} does not have the pinned SHA-256; fetching it again",
            cached.display()
        ));
        std::fs::remove_file(&cached)?;
    } else {
        failures.push(format!("cache: no {}", cached.display()));
    }
    // (b) a mirror folder.
    match opts.mirror() {
        None => failures.push(format!(
            "mirror: none given (--mirror DIR or {})",
            crate::vendor::MIRROR_ENV
        )),
        Some(dir) => {
            let path = dir.join(&sec.archive);
            if matches(&path)? {
                eprintln!("  {label}: mirror {}", path.display());
                return Ok(path);
            }
            failures.push(if path.is_file() {
                format!(
                    "mirror: {} does not have the pinned SHA-256",
                    path.display()
                )
            } else {
                format!("mirror: {} holds no {}", dir.display(), sec.archive)
            });
        }
    }
    // (c) Debian's source archive, through apt.
    match (&pin.debian, opts.offline) {
        (None, _) => failures.push("debian: the pin names no source package".into()),
        (Some(_), true) => failures.push("debian: skipped (offline)".into()),
        (Some(deb), false) => {
            let apt = AptOrigin {
                state: &project.apt(),
                downloads: &project.downloads(),
            };
            let got = apt.index(deb).and_then(|index| {
                let files = index.files(&sec.debian)?;
                let Some(file) = files.iter().find(|f| f.name == sec.archive) else {
                    bail!(
                        "{} lists no {} (it lists {})",
                        index.spec(&sec.debian),
                        sec.archive,
                        files
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                };
                if file.sha256 != sec.sha256 {
                    bail!(
                        "the signed index gives {} the SHA-256 {}, the pin {}",
                        sec.archive,
                        file.sha256,
                        sec.sha256
                    );
                }
                index.download(file)
            });
            match got {
                Ok(path) => {
                    eprintln!("  {label}: debian {} from {}", sec.archive, sec.debian);
                    return Ok(path);
                }
                Err(e) => failures.push(format!("debian: {}", format!("{e:#}").replace('\n', " "))),
            }
        }
    }
    bail!(
        "no origin supplied {} ({}, sha256 {}):\n  {}\nfix: put {} into a folder and pass --mirror DIR, or restore network access",
        label,
        sec.archive,
        sec.sha256,
        failures.join("\n  "),
        sec.archive
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.debian.tar.xz`-like archive holding `files`.
    fn queue_archive(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
        let path = dir.join("pkg_1.0-1.debian.tar.xz");
        let mut tar = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        let raw = tar.into_inner().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        std::io::Write::write_all(&mut xz, &raw).unwrap();
        std::fs::write(&path, xz.finish().unwrap()).unwrap();
        path
    }

    const FIX: &str = "--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-bug\n+fix\n";

    #[test]
    fn reads_only_the_named_patches_in_the_pins_order() {
        let d = tempfile::tempdir().unwrap();
        let archive = queue_archive(
            d.path(),
            &[
                (
                    "debian/patches/series",
                    "packaging.patch\nCVE-1.patch\nCVE-2.patch\n",
                ),
                ("debian/patches/packaging.patch", FIX),
                ("debian/patches/CVE-1.patch", FIX),
                ("debian/patches/CVE-2.patch", FIX),
                ("debian/changelog", "pkg (1.0-1) unstable\n"),
            ],
        );
        let sec = SecurityPin {
            debian: "1.0-1".into(),
            archive: "pkg_1.0-1.debian.tar.xz".into(),
            sha256: treehash::sha256_file(&archive).unwrap(),
            patches: vec!["CVE-2.patch".into(), "CVE-1.patch".into()],
        };
        let q = read_queue(&archive, &sec).unwrap();
        let names: Vec<&str> = q.patches.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["CVE-2.patch", "CVE-1.patch"]);
        assert_eq!(
            q.location("CVE-1.patch"),
            "pkg_1.0-1.debian.tar.xz: debian/patches/CVE-1.patch"
        );
    }

    #[test]
    fn leaves_out_the_named_test_files_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let with_test = "CVE-2026-1\n--- a/src/x.c\n+++ b/src/x.c\n@@ -1 +1 @@\n-a\n+b\n\
                         --- a/tests/t.tcl\n+++ b/tests/t.tcl\n@@ -1 +1 @@\n-a\n+b\n";
        let archive = queue_archive(d.path(), &[("debian/patches/CVE-1.patch", with_test)]);
        let trimmed = |without: &[&str]| SecurityPin {
            debian: "1.0-1".into(),
            archive: "pkg_1.0-1.debian.tar.xz".into(),
            sha256: treehash::sha256_file(&archive).unwrap(),
            patches: vec![QueuePatch::Trimmed(crate::pins::TrimmedPatch {
                name: "CVE-1.patch".into(),
                without: without.iter().map(|s| s.to_string()).collect(),
                why: "written for a newer Redis".into(),
            })],
        };
        let q = read_queue(&archive, &trimmed(&["tests/t.tcl"])).unwrap();
        let files: Vec<&str> = q.patches[0].files.iter().map(|f| f.path()).collect();
        assert_eq!(files, ["src/x.c"]);
        assert_eq!(q.patches[0].left_out, ["tests/t.tcl"]);
        let err = format!(
            "{:#}",
            read_queue(&archive, &trimmed(&["tests/other.tcl"])).unwrap_err()
        );
        assert!(err.contains("does not change tests/other.tcl"), "{err}");
    }

    #[test]
    fn a_missing_patch_names_the_archive_and_what_it_holds() {
        let d = tempfile::tempdir().unwrap();
        let archive = queue_archive(d.path(), &[("debian/patches/CVE-1.patch", FIX)]);
        let sec = SecurityPin {
            debian: "1.0-1".into(),
            archive: "pkg_1.0-1.debian.tar.xz".into(),
            sha256: treehash::sha256_file(&archive).unwrap(),
            patches: vec!["CVE-9.patch".into()],
        };
        let err = format!("{:#}", read_queue(&archive, &sec).unwrap_err());
        assert!(
            err.contains("has no debian/patches/CVE-9.patch") && err.contains("holds: CVE-1.patch"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------
// Staying current: `cargo xtask upgrade COMPONENT VERSION --security`

/// What a refresh of a pin's security queue found.
pub struct Refresh {
    pub pin: String,
    /// The pinned revision, if any.
    pub from: Option<String>,
    /// The newest revision of the pinned upstream version in the suites.
    pub to: String,
    pub archive: String,
    pub sha256: String,
    /// The queue after the refresh: the pinned patches still present, then
    /// the new CVE patches, in the new revision's order.
    pub patches: Vec<String>,
    /// CVE patches the new revision adds, with the CVEs their names and
    /// headers mention.
    pub added: Vec<(String, Vec<String>)>,
    /// Pinned patches the new revision no longer carries.
    pub dropped: Vec<String>,
    /// The patches the new revision adds that are not taken: packaging, or
    /// only tests.
    pub skipped: Vec<(String, &'static str)>,
    pub rehearsal: Option<patch::Rehearsal>,
    pub written: bool,
}

impl Refresh {
    pub fn failed(&self) -> usize {
        self.rehearsal.as_ref().map_or(0, patch::Rehearsal::failed)
    }
}

impl std::fmt::Display for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.from {
            Some(from) if *from == self.to => writeln!(
                f,
                "{}: the pinned queue {from} is the newest revision",
                self.pin
            )?,
            Some(from) => writeln!(f, "{}: security queue {from} -> {}", self.pin, self.to)?,
            None => writeln!(f, "{}: security queue (none) -> {}", self.pin, self.to)?,
        }
        writeln!(f, "  archive: {} (sha256 {})", self.archive, self.sha256)?;
        for (p, cves) in &self.added {
            writeln!(
                f,
                "  new: {p} ({})",
                if cves.is_empty() {
                    "no CVE id named".to_string()
                } else {
                    cves.join(", ")
                }
            )?;
        }
        for p in &self.dropped {
            writeln!(f, "  gone: {p} (the new revision no longer carries it)")?;
        }
        for (p, why) in &self.skipped {
            writeln!(f, "  not taken: {p} ({why})")?;
        }
        if let Some(r) = &self.rehearsal {
            writeln!(f)?;
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// CVE ids named in a text.
fn cve_ids(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("CVE-") {
        let start = i + at;
        let mut end = start + 4;
        let digits = |e: &mut usize| {
            let s = *e;
            while *e < b.len() && b[*e].is_ascii_digit() {
                *e += 1;
            }
            *e - s
        };
        if digits(&mut end) == 4 && end < b.len() && b[end] == b'-' {
            end += 1;
            if digits(&mut end) >= 4 {
                let id = text[start..end].to_string();
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        i = start + 4;
    }
    out
}

/// Whether a patch only changes tests (`test/`, `tests/`).
fn only_tests(p: &patch::Patch) -> bool {
    p.files.iter().all(|f| {
        let path = f.path();
        path.starts_with("test/") || path.starts_with("tests/")
    })
}

/// A new revision's queue against the pinned one.
struct Classified {
    patches: Vec<String>,
    added: Vec<(String, Vec<String>)>,
    skipped: Vec<(String, &'static str)>,
    dropped: Vec<String>,
}

/// Which patches of a revision's `series` (the archive's `debian/patches/`
/// members by path) the queue takes: the pinned ones it still carries, and
/// new ones that name a CVE and change more than tests; never packaging.
fn classify(
    pinned: &[String],
    series_text: &str,
    members: &std::collections::BTreeMap<String, Vec<u8>>,
) -> Result<Classified> {
    let listed: Vec<String> = series_text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap_or(l).to_string())
        .collect();
    let mut c = Classified {
        patches: Vec::new(),
        added: Vec::new(),
        skipped: Vec::new(),
        dropped: pinned
            .iter()
            .filter(|p| !listed.contains(p))
            .cloned()
            .collect(),
    };
    for name in &listed {
        if pinned.contains(name) {
            c.patches.push(name.clone());
            continue;
        }
        let body = members
            .get(&format!("{DEBIAN_PATCHES}/{name}"))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .with_context(|| format!("the series lists {name}, which the archive does not hold"))?;
        let cves = cve_ids(&format!("{name}\n{body}"));
        if name.starts_with("debian-packaging/") || cves.is_empty() {
            c.skipped
                .push((name.clone(), "names no CVE: packaging or another fix"));
        } else if only_tests(&patch::parse(name, &body)?) {
            c.skipped.push((name.clone(), "changes only tests"));
        } else {
            c.patches.push(name.clone());
            c.added.push((name.clone(), cves));
        }
    }
    Ok(c)
}

/// Find the newest Debian revision of `pin`'s upstream version, list the CVE
/// patches it adds to the pinned queue, rehearse the whole series with them,
/// and with `write` put the new queue into `vendor/sources.toml`.
pub fn refresh(
    project: &Project,
    component: crate::pins_edit::Component,
    version: &str,
    write: bool,
    opts: &VendorOptions,
) -> Result<Refresh> {
    use crate::{pins::Pins, pins_edit};
    let pins_path = project.root.join(crate::pins::PINS_FILE);
    let text = std::fs::read_to_string(&pins_path)
        .with_context(|| format!("reading {}", pins_path.display()))?;
    let pins = Pins::parse(&text)?;
    let (pin, slot) = match component {
        pins_edit::Component::Openssl => (pins.openssl.clone(), pins_edit::Slot::Openssl),
        pins_edit::Component::Redis => {
            let i = pins
                .redis
                .iter()
                .position(|p| p.version == version)
                .with_context(|| {
                    format!(
                        "no Redis pin of version {version} in {}: --security refreshes the queue of a pinned version",
                        crate::pins::PINS_FILE
                    )
                })?;
            (pins.redis[i].clone(), pins_edit::Slot::Redis(i))
        }
    };
    if pin.version != version {
        bail!(
            "{} is pinned at {}, not {version}: --security refreshes the queue of the pinned version \
             (move to {version} first with `cargo xtask upgrade {component} {version}`)",
            pin.name,
            pin.version
        );
    }
    let deb = pin.debian.as_ref().with_context(|| {
        format!(
            "the {} pin names no Debian source package to look for a queue in",
            pin.id()
        )
    })?;
    if opts.offline {
        bail!("--security asks Debian's archive for its newest revision: it cannot run --offline");
    }
    let _lock = project.lock()?;
    let apt = AptOrigin {
        state: &project.apt(),
        downloads: &project.downloads(),
    };
    let index = apt.index(deb)?;
    let newest = index.newest_of(&pin.version)?;
    let files = index.files(&newest)?;
    let Some(file) = files.iter().find(|f| f.name.ends_with(".debian.tar.xz")) else {
        bail!(
            "{} has no .debian.tar.xz (a native or 1.0-format package has no patch queue)",
            index.spec(&newest)
        );
    };
    let archive = index.download(file).with_context(|| {
        format!(
            "{} is listed in the index, but fetching its {} failed: the revision is not served yet",
            index.spec(&newest),
            file.name
        )
    })?;
    let prefix = format!("{DEBIAN_PATCHES}/");
    let members = archive::read_files(&archive, |p| p.starts_with(&prefix))?;
    let series_text = members
        .get(&format!("{prefix}series"))
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .with_context(|| format!("{} has no {prefix}series", file.name))?;
    let entries: Vec<QueuePatch> = pin
        .security
        .as_ref()
        .map(|s| s.patches.clone())
        .unwrap_or_default();
    let pinned: Vec<String> = entries.iter().map(|e| e.name().to_string()).collect();
    let q = classify(&pinned, &series_text, &members)
        .with_context(|| format!("reading {}", file.name))?;
    let (patches, added, skipped, dropped) = (q.patches, q.added, q.skipped, q.dropped);
    let new_pin = SecurityPin {
        debian: newest.clone(),
        archive: file.name.clone(),
        sha256: file.sha256.clone(),
        // A pinned patch keeps its left-out tests (checked again on reading).
        patches: patches
            .iter()
            .map(|n| {
                entries
                    .iter()
                    .find(|e| e.name() == n)
                    .cloned()
                    .unwrap_or_else(|| QueuePatch::Whole(n.clone()))
            })
            .collect(),
    };

    // Rehearse: the pin's own series, then the new queue.
    let source = crate::vendor::vendor(project, &pin, opts)?;
    let mut series = match pin.patches_dir(&project.root) {
        Some(dir) => Series::load(&dir)?,
        None => Series::empty(&project.root),
    };
    series.security = Some(read_queue(&archive, &new_pin)?);
    let rehearsal = patch::Rehearsal {
        series: format!(
            "{} + {}",
            pin.patches.as_deref().unwrap_or("(no series)"),
            new_pin.archive
        ),
        against: format!("{} {}", pin.name, pin.version),
        reports: patch::check_series(
            &source.dir,
            &series,
            &project.scratch().join(format!("security-{}", pin.id())),
        )?,
    };
    let mut refresh = Refresh {
        pin: pin.id(),
        from: pin.security.as_ref().map(|s| s.debian.clone()),
        to: newest,
        archive: new_pin.archive.clone(),
        sha256: new_pin.sha256.clone(),
        patches,
        added,
        dropped,
        skipped,
        rehearsal: Some(rehearsal),
        written: false,
    };
    if write && refresh.failed() == 0 && refresh.from.as_deref() != Some(refresh.to.as_str()) {
        let candidate = SourcePin {
            security: Some(new_pin),
            ..pin.clone()
        };
        let out = pins_edit::render_pins(&text, slot, &pin, &candidate)?;
        crate::fsutil::write_atomic(&pins_path, out.as_bytes())?;
        refresh.written = true;
    }
    Ok(refresh)
}

#[cfg(test)]
mod refresh_tests {
    use super::*;

    #[test]
    fn takes_new_cve_fixes_and_never_packaging_or_tests() {
        let fix = "Fixes CVE-2026-1002\n--- a/src/x.c\n+++ b/src/x.c\n@@ -1 +1 @@\n-a\n+b\n";
        let test_only = "CVE-2026-1003\n--- a/test/t.c\n+++ b/test/t.c\n@@ -1 +1 @@\n-a\n+b\n";
        let packaging = "--- a/debian/x\n+++ b/debian/x\n@@ -1 +1 @@\n-a\n+b\n";
        let members: std::collections::BTreeMap<String, Vec<u8>> = [
            ("CVE-2026-1001.patch", fix),
            ("fix-the-thing.patch", fix),
            ("Add-test-for-CVE-2026-1003.patch", test_only),
            ("debian-packaging/0001-defaults.patch", packaging),
            ("0004-USE_SYSTEM_JEMALLOC.patch", packaging),
        ]
        .into_iter()
        .map(|(n, b)| (format!("{DEBIAN_PATCHES}/{n}"), b.as_bytes().to_vec()))
        .collect();
        let series = "debian-packaging/0001-defaults.patch\n0004-USE_SYSTEM_JEMALLOC.patch\n\
                      CVE-2026-1001.patch\nfix-the-thing.patch\nAdd-test-for-CVE-2026-1003.patch\n";
        let pinned = vec!["CVE-2026-1001.patch".to_string(), "gone.patch".to_string()];
        let c = classify(&pinned, series, &members).unwrap();
        assert_eq!(c.patches, ["CVE-2026-1001.patch", "fix-the-thing.patch"]);
        assert_eq!(
            c.added,
            [(
                "fix-the-thing.patch".to_string(),
                vec!["CVE-2026-1002".to_string()]
            )]
        );
        assert_eq!(c.dropped, ["gone.patch"]);
        let skipped: Vec<&str> = c.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            skipped,
            [
                "debian-packaging/0001-defaults.patch",
                "0004-USE_SYSTEM_JEMALLOC.patch",
                "Add-test-for-CVE-2026-1003.patch"
            ]
        );
    }

    #[test]
    fn names_cve_ids_once() {
        assert_eq!(
            cve_ids("0009-CVE-2026-21863.patch\nFixes CVE-2026-21863 and CVE-2025-1234."),
            ["CVE-2026-21863", "CVE-2025-1234"]
        );
        assert!(cve_ids("CVE-26-1 and CVE-abcd").is_empty());
    }
}
