//! `cargo xtask repro`: prove a release rebuilds bit for bit.
//!
//! Two cold `dist` runs, each from its own clean checkout (a `git clone` of
//! HEAD) in a different absolute path, with its own state folder, target
//! folder and zig cache (nothing shared), under a different hostname (a new
//! UTS namespace), umask and TZ, at a different wall-clock time. The release
//! archives, their provenance and SHA256SUMS must be identical; otherwise
//! the first differing member (for an ELF member its first differing
//! section), or the first differing line, is named.

use std::{
    collections::BTreeMap,
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{project::Project, run, treehash};

/// How one of the two builds differs from the other.
#[derive(Debug, Clone)]
pub struct Variant {
    pub label: &'static str,
    pub hostname: &'static str,
    pub tz: &'static str,
    pub umask: &'static str,
    /// Path below the repro folder, so the two absolute paths differ in depth and length.
    pub subdir: &'static str,
}

pub const VARIANTS: [Variant; 2] = [
    Variant {
        label: "a",
        hostname: "repro-alpha",
        tz: "UTC",
        umask: "022",
        subdir: "a/checkout",
    },
    Variant {
        label: "b",
        hostname: "builder-beta-2",
        tz: "Pacific/Kiritimati",
        umask: "077",
        subdir: "b/some/deeper/path/to/the/checkout",
    },
];

#[derive(Debug, Clone)]
pub struct ReproOptions {
    pub redis: Option<String>,
    /// Where the two build roots go (default: `<state>/repro`).
    pub work: Option<PathBuf>,
    pub mirror: Option<PathBuf>,
    /// Keep the build roots after a successful comparison.
    pub keep: bool,
}

/// One finished build.
#[derive(Debug, Clone)]
pub struct BuildRun {
    pub label: &'static str,
    pub root: PathBuf,
    pub archives: Vec<PathBuf>,
    pub seconds: f64,
}

pub fn run(project: &Project, opts: &ReproOptions) -> Result<bool> {
    let sh = Shell::new()?;
    let root = &project.root;
    let dirty = cmd!(sh, "git -C {root} status --porcelain --untracked-files=no")
        .quiet()
        .read()?;
    if !dirty.trim().is_empty() {
        eprintln!("repro: the working tree has uncommitted changes; repro builds HEAD, as a clean checkout does");
    }
    let work = opts
        .work
        .clone()
        .unwrap_or_else(|| project.state.join("repro"));
    if work.exists() {
        crate::fsutil::make_writable_and_remove(&work)?;
    }
    let mut runs = Vec::new();
    for v in &VARIANTS {
        runs.push(build_variant(project, &work, v, opts)?);
    }
    let (a, b) = (&runs[0], &runs[1]);
    let mut identical = true;
    for (pa, pb) in a.archives.iter().zip(&b.archives) {
        let (ha, hb) = (treehash::sha256_file(pa)?, treehash::sha256_file(pb)?);
        let name = pa
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!("{name}");
        println!("  build a ({:.0}s): {ha}", a.seconds);
        println!("  build b ({:.0}s): {hb}", b.seconds);
        if ha == hb {
            println!("  identical");
        } else {
            identical = false;
            if name.ends_with(".tar.gz") {
                println!("  DIFFERENT: {}", first_difference(pa, pb)?);
                explain_with_diffoscope(pa, pb, &work)?;
            } else {
                println!("  DIFFERENT: {}", first_different_line(pa, pb)?);
            }
        }
    }
    if identical && !opts.keep {
        crate::fsutil::make_writable_and_remove(&work)?;
    }
    Ok(identical)
}

fn build_variant(
    project: &Project,
    work: &Path,
    v: &Variant,
    opts: &ReproOptions,
) -> Result<BuildRun> {
    let sh = Shell::new()?;
    let checkout = work.join(v.subdir);
    let build_root = checkout
        .parent()
        .context("checkout has a parent")?
        .to_path_buf();
    fs::create_dir_all(&build_root)?;
    let origin = &project.root;
    cmd!(sh, "git clone --quiet --no-hardlinks {origin} {checkout}")
        .quiet()
        .run()
        .with_context(|| format!("cloning {} into {}", origin.display(), checkout.display()))?;
    let state = build_root.join("state");
    let out = build_root.join("dist");
    let target = build_root.join("cargo-target");

    let mut dist = vec![
        "cargo".to_string(),
        "xtask".into(),
        "--state".into(),
        state.display().to_string(),
        "dist".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    if let Some(r) = &opts.redis {
        dist.extend(["--redis".into(), r.clone()]);
    }
    if let Some(m) = &opts.mirror {
        dist.extend(["--mirror".into(), m.display().to_string()]);
    }
    let script = format!("umask {} && exec \"$@\"", v.umask);
    let mut argv: Vec<String> = Vec::new();
    if new_uts_namespace_works() {
        argv.extend(["unshare".into(), "--uts".into(), "sh".into(), "-c".into()]);
        argv.push(format!("hostname {} && {script}", v.hostname));
    } else {
        eprintln!("repro: cannot create a UTS namespace here (needs root); hostnames not varied");
        argv.extend(["sh".into(), "-c".into(), script]);
    }
    argv.push("sh".into());
    argv.extend(dist);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(&checkout)
        .env("TZ", v.tz)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove(crate::project::STATE_ENV)
        .env_remove(crate::vendor::MIRROR_ENV);
    let start = Instant::now();
    let log = build_root.join("dist.log");
    run::logged(
        &format!("repro build {} ({})", v.label, checkout.display()),
        cmd,
        &log,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let mut archives: Vec<PathBuf> = fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".tar.gz") || n.ends_with(".intoto.json") || n.ends_with("/SHA256SUMS")
        })
        .collect();
    archives.sort();
    if archives.is_empty() {
        bail!(
            "build {} wrote no archive into {}; see {}",
            v.label,
            out.display(),
            log.display()
        );
    }
    Ok(BuildRun {
        label: v.label,
        root: build_root,
        archives,
        seconds,
    })
}

fn new_uts_namespace_works() -> bool {
    Command::new("unshare")
        .args(["--uts", "true"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The first line where two text files differ.
pub fn first_different_line(a: &Path, b: &Path) -> Result<String> {
    let (ta, tb) = (fs::read_to_string(a)?, fs::read_to_string(b)?);
    let (la, lb): (Vec<&str>, Vec<&str>) = (ta.lines().collect(), tb.lines().collect());
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i), lb.get(i));
        if x != y {
            return Ok(format!(
                "line {}: {:?} against {:?}",
                i + 1,
                x.unwrap_or(&"(end)"),
                y.unwrap_or(&"(end)")
            ));
        }
    }
    Ok("same lines, different bytes (line ends)".into())
}

/// Members of a .tar.gz in order: path → (header summary, bytes).
fn members(path: &Path) -> Result<Vec<(String, String, Vec<u8>)>> {
    let f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = Vec::new();
    for e in tar.entries()? {
        let mut e = e?;
        let h = e.header();
        let summary = format!(
            "type {:?} mode {:o} mtime {} uid {} gid {} link {:?}",
            h.entry_type(),
            h.mode().unwrap_or(0),
            h.mtime().unwrap_or(0),
            h.uid().unwrap_or(0),
            h.gid().unwrap_or(0),
            e.link_name()
                .ok()
                .flatten()
                .map(|l| l.display().to_string())
        );
        let name = e.path()?.display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes)?;
        out.push((name, summary, bytes));
    }
    Ok(out)
}

/// The first member that differs, and for ELF files the first differing section.
pub fn first_difference(a: &Path, b: &Path) -> Result<String> {
    let (ma, mb) = (members(a)?, members(b)?);
    for (i, (x, y)) in ma.iter().zip(&mb).enumerate() {
        if x.0 != y.0 {
            return Ok(format!(
                "member #{i}: `{}` in a, `{}` in b (order or names differ)",
                x.0, y.0
            ));
        }
        if x.1 != y.1 {
            return Ok(format!(
                "member `{}`: header differs: {} / {}",
                x.0, x.1, y.1
            ));
        }
        if x.2 != y.2 {
            let section = first_differing_section(&x.2, &y.2)
                .map(|s| format!(", first differing ELF section: {s}"))
                .unwrap_or_default();
            return Ok(format!(
                "member `{}`: contents differ ({} vs {} bytes){section}",
                x.0,
                x.2.len(),
                y.2.len()
            ));
        }
    }
    if ma.len() != mb.len() {
        return Ok(format!("a has {} members, b has {}", ma.len(), mb.len()));
    }
    Ok("the tar streams are identical; only the gzip layer differs".into())
}

/// Name of the first section (in a's order) whose bytes differ, if both are ELF.
pub fn first_differing_section(a: &[u8], b: &[u8]) -> Option<String> {
    use object::{Object, ObjectSection};
    let (fa, fb) = (object::File::parse(a).ok()?, object::File::parse(b).ok()?);
    let sections_b: BTreeMap<String, Vec<u8>> = fb
        .sections()
        .filter_map(|s| Some((s.name().ok()?.to_string(), s.data().ok()?.to_vec())))
        .collect();
    for s in fa.sections() {
        let name = s.name().ok()?.to_string();
        let data = s.data().ok()?;
        match sections_b.get(&name) {
            None => return Some(format!("{name} (missing in b)")),
            Some(other) if other.as_slice() != data => return Some(name),
            _ => {}
        }
    }
    Some("none (headers or layout differ)".into())
}

fn explain_with_diffoscope(a: &Path, b: &Path, work: &Path) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("diffoscope").is_file()))
        .unwrap_or(false);
    if !found {
        println!("  for a full comparison install diffoscope (`sudo apt-get install diffoscope`) and run it on the two archives");
        return Ok(());
    }
    let report = work.join("diffoscope.txt");
    let _ = Command::new("diffoscope")
        .arg("--text")
        .arg(&report)
        .arg(a)
        .arg(b)
        .status();
    println!("  diffoscope report: {}", report.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tarball::TarTree;

    #[test]
    fn names_the_first_differing_member() {
        let d = tempfile::tempdir().unwrap();
        let mut t = TarTree::new();
        t.file("p/a", b"same".to_vec(), false)
            .file("p/b", b"one".to_vec(), false);
        let mut u = t.clone();
        u.file("p/b", b"two".to_vec(), false);
        let (pa, pb) = (d.path().join("a.tar.gz"), d.path().join("b.tar.gz"));
        fs::write(&pa, t.tar_gz_bytes(0).unwrap()).unwrap();
        fs::write(&pb, u.tar_gz_bytes(0).unwrap()).unwrap();
        let diff = first_difference(&pa, &pb).unwrap();
        assert!(diff.contains("member `p/b`: contents differ"), "{diff}");
        fs::write(&pb, t.tar_gz_bytes(1).unwrap()).unwrap();
        assert!(first_difference(&pa, &pb)
            .unwrap()
            .contains("header differs"));
    }

    #[test]
    fn names_the_first_differing_elf_section() {
        let exe = std::env::current_exe().unwrap();
        let a = fs::read(&exe).unwrap();
        let mut b = a.clone();
        // Flip one byte inside .rodata.
        use object::{Object, ObjectSection};
        let f = object::File::parse(&*a).unwrap();
        let ro = f.section_by_name(".rodata").unwrap();
        let (off, size) = ro.file_range().unwrap();
        b[(off + size / 2) as usize] ^= 0xff;
        assert_eq!(first_differing_section(&a, &b).as_deref(), Some(".rodata"));
        assert_eq!(first_differing_section(b"not elf", b"x"), None);
    }
}
