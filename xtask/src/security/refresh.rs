//! `upgrade --security`: the newest Debian revision of the pinned version,
//! its new CVE patches classified and rehearsed, written with `--write`.

use super::*;
use crate::{
    debian::SourceFile,
    pins_edit::{Component, Slot},
};

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

/// The pin of `component` at `version` and where it sits in the pins file.
fn pinned(
    pins: &crate::pins::Pins,
    component: Component,
    version: &str,
) -> Result<(SourcePin, Slot)> {
    let (pin, slot) = match component {
        Component::Openssl => (pins.openssl.clone(), Slot::Openssl),
        Component::Redis => {
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
            (pins.redis[i].clone(), Slot::Redis(i))
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
    Ok((pin, slot))
}

/// The newest Debian revision of `pin`'s version: its name, its
/// `.debian.tar.xz` as the signed index lists it, and the downloaded file.
fn newest_queue(
    project: &Project,
    pin: &SourcePin,
    deb: &DebianPin,
) -> Result<(String, SourceFile, PathBuf)> {
    let apt = AptOrigin {
        state: &project.apt(),
        downloads: &project.downloads(),
    };
    let index = apt.index(deb)?;
    let newest = index.newest_of(&pin.version)?;
    let files = index.files(&newest)?;
    let Some(file) = files
        .into_iter()
        .find(|f| f.name.ends_with(".debian.tar.xz"))
    else {
        bail!(
            "{} has no .debian.tar.xz (a native or 1.0-format package has no patch queue)",
            index.spec(&newest)
        );
    };
    let archive = index.download(&file).with_context(|| {
        format!(
            "{} is listed in the index, but fetching its {} failed: the revision is not served yet",
            index.spec(&newest),
            file.name
        )
    })?;
    Ok((newest, file, archive))
}

/// The pin's own series, then the new queue, rehearsed on its tree.
fn rehearse(
    project: &Project,
    pin: &SourcePin,
    archive: &Path,
    queue: &SecurityPin,
    opts: &VendorOptions,
) -> Result<patch::Rehearsal> {
    let source = crate::vendor::vendor(project, pin, opts)?;
    let mut series = match pin.patches_dir(&project.root) {
        Some(dir) => Series::load(&dir)?,
        None => Series::empty(&project.root),
    };
    series.security = Some(read_queue(archive, queue)?);
    Ok(patch::Rehearsal {
        series: format!(
            "{} + {}",
            pin.patches.as_deref().unwrap_or("(no series)"),
            queue.archive
        ),
        against: format!("{} {}", pin.name, pin.version),
        reports: patch::check_series(
            &source.dir,
            &series,
            &project.scratch().join(format!("security-{}", pin.id())),
        )?,
    })
}

/// Find the newest Debian revision of `pin`'s upstream version, list the CVE
/// patches it adds to the pinned queue, rehearse the whole series with them,
/// and with `write` put the new queue into `vendor/sources.toml`.
pub fn refresh(
    project: &Project,
    component: Component,
    version: &str,
    write: bool,
    opts: &VendorOptions,
) -> Result<Refresh> {
    let pins_path = project.root.join(crate::pins::PINS_FILE);
    let text = std::fs::read_to_string(&pins_path)
        .with_context(|| format!("reading {}", pins_path.display()))?;
    let pins = crate::pins::Pins::parse(&text)?;
    let (pin, slot) = pinned(&pins, component, version)?;
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
    let (newest, file, archive) = newest_queue(project, &pin, deb)?;
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
    let rehearsal = rehearse(project, &pin, &archive, &new_pin, opts)?;
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
        let out = crate::pins_edit::render_pins(&text, slot, &pin, &candidate)?;
        crate::fsutil::write_atomic(&pins_path, out.as_bytes())?;
        refresh.written = true;
    }
    Ok(refresh)
}

#[cfg(test)]
mod tests;
