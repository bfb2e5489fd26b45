//! Writing a release folder: the archives (gzip reused by the hash of its
//! tar stream), the files beside them, SHA256SUMS and its signature, each
//! written only when its bytes changed.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{
    records::{BuildInfo, OutputInfo, ReleaseBuildInfo},
    stages::Line,
    DistOptions,
};
use crate::{
    build::{BuiltOpenssl, BuiltRedis},
    fsutil,
    project::Project,
    provenance, signature,
    tarball::{Level, TarTree},
    toolchain::Toolchain,
    treehash,
};

/// Beside the archives: the BUILDINFO with their hashes, the SBOM, the
/// provenance, SHA256SUMS and (with `--sign`) its signature; a signature of
/// an earlier SHA256SUMS is removed. The release's files with their hashes,
/// the archives first.
pub(super) fn publish(
    line: &Line,
    opts: &DistOptions,
    name: &str,
    info: &BuildInfo,
    archives: Vec<OutputInfo>,
    bom_bytes: &[u8],
) -> Result<Vec<OutputInfo>> {
    let mut written = archives.clone();
    let mut write = |file: String, bytes: &[u8]| -> Result<()> {
        write_if_changed(&opts.out.join(&file), bytes)?;
        written.push(OutputInfo {
            path: file,
            sha256: treehash::sha256_bytes(bytes),
            build_id: None,
        });
        Ok(())
    };
    let subjects = archives
        .iter()
        .map(|a| (a.path.clone(), a.sha256.clone()))
        .collect();
    let beside = json_bytes(&ReleaseBuildInfo { info, archives })?;
    write(format!("{name}.buildinfo.json"), &beside)?;
    write(format!("{name}.cdx.json"), bom_bytes)?;
    let toolchain = line.toolchain;
    let statement = provenance::statement(provenance::Facts {
        subjects,
        materials: provenance::materials(line.project, line.pins, line.redis, &toolchain.target)?,
        redis: &line.redis.version,
        sandbox: &opts.sandbox.to_string(),
        allowed_cves: info.security.allowed_cves.clone(),
        internal: serde_json::json!({
            "flags": line.flags,
            "target": &toolchain.target.zig,
            "cpu": &toolchain.pin.cpu,
            "opt": &toolchain.pin.opt,
        }),
        zig: &toolchain.identity,
        buildinfo: (
            format!("{name}.buildinfo.json"),
            treehash::sha256_bytes(&beside),
        ),
    });
    write(format!("{name}.intoto.json"), &json_bytes(&statement)?)?;
    write_sha256sums(&opts.out)?;
    let sig = opts.out.join(signature::SIG);
    match &opts.sign {
        Some(key) => {
            signature::sign(&opts.out, key, &line.project.scratch())?;
            eprintln!("  signed {} with {}", sig.display(), key.display());
        }
        None if sig.exists() && !signature::matches(&opts.out.join(signature::SUMS), &sig) => {
            fs::remove_file(&sig)?;
            eprintln!(
                "  removed {}: it signed an earlier SHA256SUMS (dist --sign KEY signs this one)",
                sig.display()
            );
        }
        None => {}
    }
    Ok(written)
}

/// Compress `tree` into `dest` unless `dest` already holds exactly these bytes.
/// gzip output is a function of the tar stream, the encoder and its level, so
/// a gzip made before from the same three (kept under their hash) is reused.
pub(super) fn write_tar_gz(
    project: &Project,
    tree: &TarTree,
    mtime: u64,
    level: Level,
    dest: &Path,
) -> Result<String> {
    let tar = tree.tar_bytes(mtime)?;
    let tar_sha = treehash::sha256_bytes(&tar);
    let cached = project
        .state
        .join("packages")
        .join(format!("{tar_sha}-{}.tar.gz", level.id()));
    let gz = match fs::read(&cached) {
        Ok(gz) => gz,
        Err(_) => {
            let gz = crate::tarball::gzip(&tar, level)?;
            fsutil::write_atomic(&cached, &gz)?;
            gz
        }
    };
    let sha = treehash::sha256_bytes(&gz);
    if fs::read(dest)
        .map(|b| treehash::sha256_bytes(&b))
        .ok()
        .as_deref()
        != Some(sha.as_str())
    {
        fsutil::write_atomic(dest, &gz)?;
    }
    Ok(sha)
}

pub(super) fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).ok().as_deref() != Some(bytes) {
        fsutil::write_atomic(path, bytes)?;
    }
    Ok(())
}

pub(super) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

pub(super) fn json_bytes(v: &impl Serialize) -> Result<Vec<u8>> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    Ok(s.into_bytes())
}

/// Licence files of every component: `<component>/<path>` → bytes.
pub(super) fn licenses(
    toolchain: &Toolchain,
    redis: &BuiltRedis,
    openssl: &BuiltOpenssl,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for dir in [redis.dir.join("licenses"), openssl.dir.join("licenses")] {
        for path in walk(&dir)? {
            let rel = path
                .strip_prefix(&dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            out.push((rel, fs::read(&path)?));
        }
    }
    let zig_license = toolchain.dir.join("LICENSE");
    if zig_license.is_file() {
        out.push((
            format!("zig-{}/LICENSE", toolchain.version),
            fs::read(zig_license)?,
        ));
    }
    // A static target links zig's copy of musl into every program.
    if toolchain.target.libc() == "musl" {
        let copyright = toolchain.musl_dir().join("COPYRIGHT");
        let text = fs::read(&copyright).with_context(|| {
            format!(
                "reading {}: the static target's C library must ship its licence",
                copyright.display()
            )
        })?;
        out.push(("musl/COPYRIGHT".into(), text));
    }
    if out.is_empty() {
        bail!("no licence files were collected; check `licenses` in vendor/sources.toml");
    }
    Ok(out)
}

pub(super) fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `SHA256SUMS` over every release file in `dir`.
/// The release files of a folder `dist` writes (`portable-redis-*`), sorted.
pub fn release_files(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("portable-redis-"))
        .collect();
    names.sort();
    Ok(names)
}

pub fn write_sha256sums(dir: &Path) -> Result<()> {
    let mut text = String::new();
    for n in release_files(dir)? {
        text.push_str(&format!("{}  {n}\n", treehash::sha256_file(&dir.join(&n))?));
    }
    write_if_changed(&dir.join("SHA256SUMS"), text.as_bytes())
}
