//! The security queue of a pin: the CVE patches a distribution carries for
//! the very upstream version pinned (`security` in `vendor/sources.toml`).
//!
//! The queue's archive (Debian's `*.debian.tar.xz`) is a pinned input like a
//! source tree: it is fetched through the same origins (the local cache, a
//! mirror folder, the Debian source archive through apt with private state),
//! accepted only with the pinned SHA-256, and only the patches the pin names
//! are read from it; packaging patches are never applied. They are applied
//! after the pin's own series by the same applier (see `patch/`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{
    archive,
    debian::AptOrigin,
    patch::{self, Queue, Series},
    pins::{DebianPin, QueuePatch, SecurityPin, SourcePin},
    project::Project,
    treehash,
    vendor::{Origins, VendorOptions},
};

mod refresh;
pub use refresh::*;

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

/// The queue's archive from the first origin that has it with the pinned
/// hash: the downloads cache, a mirror folder, Debian's source archive.
fn obtain(
    project: &Project,
    pin: &SourcePin,
    sec: &SecurityPin,
    opts: &VendorOptions,
) -> Result<PathBuf> {
    let mut origins = Origins::new(format!("{} security queue", pin.id()));
    let matches = |path: &Path| -> Result<bool> {
        Ok(path.is_file() && treehash::sha256_file(path)? == sec.sha256)
    };
    // (a) the downloads cache.
    let cached = project.downloads().join(&sec.archive);
    if matches(&cached)? {
        return Ok(cached);
    }
    if cached.is_file() {
        origins.missed(
            "cache",
            format!(
                "{} does not have the pinned SHA-256; fetching it again",
                cached.display()
            ),
        );
        std::fs::remove_file(&cached)?;
    } else {
        origins.missed("cache", format!("no {}", cached.display()));
    }
    // (b) a mirror folder.
    if let Some(dir) = origins.mirror(opts) {
        let path = dir.join(&sec.archive);
        if matches(&path)? {
            eprintln!("  {} security queue: mirror {}", pin.id(), path.display());
            return Ok(path);
        }
        if path.is_file() {
            origins.missed(
                "mirror",
                format!("{} does not have the pinned SHA-256", path.display()),
            );
        } else {
            origins.missed(
                "mirror",
                format!("{} holds no {}", dir.display(), sec.archive),
            );
        }
    }
    // (c) Debian's source archive, through apt.
    if let Some(deb) = origins.debian(pin, opts) {
        if let Some(path) = origins.attempt("debian", from_debian(project, deb, sec)) {
            eprintln!(
                "  {} security queue: debian {} from {}",
                pin.id(),
                sec.archive,
                sec.debian
            );
            return Ok(path);
        }
    }
    Err(origins.exhausted(
        &format!("{}, sha256 {}", sec.archive, sec.sha256),
        &format!(
            "put {} into a folder and pass --mirror DIR, or restore network access",
            sec.archive
        ),
    ))
}

/// The queue's archive from Debian's signed index, which must give it the
/// pinned SHA-256.
fn from_debian(project: &Project, deb: &DebianPin, sec: &SecurityPin) -> Result<PathBuf> {
    let apt = AptOrigin {
        state: &project.apt(),
        downloads: &project.downloads(),
    };
    let index = apt.index(deb)?;
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
}

#[cfg(test)]
mod tests;
