//! Stage 2, patch: a patch series applied in order to a fresh copy of a pinned
//! tree, with offset and fuzz like GNU patch, and a report per hunk.
//!
//! A failure names the patch, the file and the hunk, shows the lines the hunk
//! expected beside what the file holds there now, and leaves no half-patched
//! tree behind (the copy is made in a staging folder).

use std::{
    fmt, fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{fsutil, treehash};

/// Most context lines a hunk may lose at each end and still apply.
const MAX_FUZZ: usize = 2;

// ---------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone)]
pub struct Patch {
    pub name: String,
    pub sha256: String,
    /// The CVEs its header says it fixes (`CVE: CVE-…, CVE-…` lines).
    pub cves: Vec<String>,
    /// What its header says it is for (`Kind: portability`): a portability
    /// patch is what it takes to build and run upstream's code for the
    /// target, so the upstream builds the release is compared with keep it.
    pub kind: Option<String>,
    pub files: Vec<FilePatch>,
    /// The patch file itself (for the SBOM's pedigree).
    pub text: String,
    /// Files of it whose hunks are not applied (tests of a queue's patch
    /// written for a newer upstream; see `pins::QueuePatch`).
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FilePatch {
    /// `None` for `/dev/null` (a new file).
    pub old: Option<String>,
    /// `None` for `/dev/null` (a deleted file).
    pub new: Option<String>,
    pub new_mode: Option<u32>,
    pub hunks: Vec<Hunk>,
}

impl FilePatch {
    pub fn path(&self) -> &str {
        self.new.as_deref().or(self.old.as_deref()).unwrap_or("?")
    }
}

#[derive(Debug, Clone)]
pub struct Hunk {
    pub old_start: usize,
    pub new_start: usize,
    /// The `@@ … @@` line, for reports.
    pub header: String,
    /// 1-based line of the header in the patch file.
    pub patch_line: usize,
    pub lines: Vec<Line>,
    /// The old side does not end with a newline (`\ No newline at end of file`).
    pub old_no_eol: bool,
    pub new_no_eol: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Context(String),
    Remove(String),
    Add(String),
}

impl Hunk {
    fn old_lines(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Context(s) | Line::Remove(s) => Some(s.as_str()),
                Line::Add(_) => None,
            })
            .collect()
    }

    /// Leading and trailing context lines, the most fuzz can drop.
    fn context_ends(&self) -> (usize, usize) {
        let lead = self
            .lines
            .iter()
            .take_while(|l| matches!(l, Line::Context(_)))
            .count();
        let trail = self
            .lines
            .iter()
            .rev()
            .take_while(|l| matches!(l, Line::Context(_)))
            .count();
        (lead, trail)
    }
}

/// Parse a unified diff (as written by `diff -u` or `git diff`).
pub fn parse(name: &str, text: &str) -> Result<Patch> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut files: Vec<FilePatch> = Vec::new();
    let mut pending_mode: Option<u32> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(mode) = line
            .strip_prefix("new file mode ")
            .or_else(|| line.strip_prefix("new mode "))
        {
            pending_mode = u32::from_str_radix(mode.trim(), 8).ok();
        }
        if line.starts_with("--- ") && i + 1 < lines.len() && lines[i + 1].starts_with("+++ ") {
            let old = strip_path(&line[4..]);
            let new = strip_path(&lines[i + 1][4..]);
            files.push(FilePatch {
                old,
                new,
                new_mode: pending_mode.take(),
                hunks: Vec::new(),
            });
            i += 2;
            continue;
        }
        if line.starts_with("@@ ") {
            let file = files
                .last_mut()
                .with_context(|| format!("{name}:{}: hunk before any `---`/`+++` header", i + 1))?;
            let (old_start, old_len, new_start, new_len) = parse_range(line)
                .with_context(|| format!("{name}:{}: malformed hunk header `{line}`", i + 1))?;
            let mut hunk = Hunk {
                old_start,
                new_start,
                header: line.to_string(),
                patch_line: i + 1,
                lines: Vec::new(),
                old_no_eol: false,
                new_no_eol: false,
            };
            let (mut old_seen, mut new_seen) = (0, 0);
            i += 1;
            while i < lines.len() && (old_seen < old_len || new_seen < new_len) {
                let l = lines[i];
                match l.as_bytes().first() {
                    Some(b' ') => {
                        hunk.lines.push(Line::Context(l[1..].to_string()));
                        old_seen += 1;
                        new_seen += 1;
                    }
                    // An empty line inside a hunk is an empty context line.
                    None => {
                        hunk.lines.push(Line::Context(String::new()));
                        old_seen += 1;
                        new_seen += 1;
                    }
                    Some(b'-') => {
                        hunk.lines.push(Line::Remove(l[1..].to_string()));
                        old_seen += 1;
                    }
                    Some(b'+') => {
                        hunk.lines.push(Line::Add(l[1..].to_string()));
                        new_seen += 1;
                    }
                    Some(b'\\') => mark_no_eol(&mut hunk),
                    _ => bail!("{name}:{}: unexpected line in hunk: `{l}`", i + 1),
                }
                i += 1;
            }
            if old_seen != old_len || new_seen != new_len {
                bail!("{name}:{}: hunk `{line}` is cut short", hunk.patch_line);
            }
            // `\ No newline at end of file` follows the last line of a side.
            while i < lines.len() && lines[i].starts_with('\\') {
                mark_no_eol(&mut hunk);
                i += 1;
            }
            file.hunks.push(hunk);
            continue;
        }
        i += 1;
    }
    if files.is_empty() {
        bail!("{name}: no file changes found (is it a unified diff?)");
    }
    Ok(Patch {
        name: name.to_string(),
        sha256: treehash::sha256_bytes(text.as_bytes()),
        cves: header_values(text, "CVE"),
        kind: header_values(text, "Kind").into_iter().next(),
        files,
        text: text.to_string(),
        left_out: Vec::new(),
    })
}

/// The values of `field:` lines in a patch's header (before its first
/// diff), split at commas and spaces: `CVE: CVE-1, CVE-2`.
pub fn header_values(text: &str, field: &str) -> Vec<String> {
    let prefix = format!("{field}:");
    text.lines()
        .take_while(|l| !l.starts_with("--- ") && !l.starts_with("diff "))
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .flat_map(|rest| {
            rest.split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The line before a `\ No newline at end of file` marker ends its side.
fn mark_no_eol(hunk: &mut Hunk) {
    match hunk.lines.last() {
        Some(Line::Remove(_)) => hunk.old_no_eol = true,
        Some(Line::Add(_)) => hunk.new_no_eol = true,
        _ => {
            hunk.old_no_eol = true;
            hunk.new_no_eol = true;
        }
    }
}

/// `a/src/x.c\t2024-01-01 …` → `src/x.c`; `/dev/null` → `None`.
fn strip_path(raw: &str) -> Option<String> {
    let path = raw.split('\t').next().unwrap_or(raw).trim_end();
    if path == "/dev/null" {
        return None;
    }
    Some(
        path.split_once('/')
            .map_or(path, |(_, rest)| rest)
            .to_string(),
    )
}

fn parse_range(line: &str) -> Option<(usize, usize, usize, usize)> {
    let inner = line.strip_prefix("@@ -")?;
    let (old, rest) = inner.split_once(" +")?;
    let (new, _) = rest.split_once(" @@")?;
    let one = |s: &str| -> Option<(usize, usize)> {
        match s.split_once(',') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => Some((s.parse().ok()?, 1)),
        }
    };
    let (os, ol) = one(old)?;
    let (ns, nl) = one(new)?;
    Some((os, ol, ns, nl))
}

// ---------------------------------------------------------------------------
// Applying

/// How one hunk went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HunkOutcome {
    Clean,
    Offset(isize),
    Fuzz { fuzz: usize, offset: isize },
    Failed(Box<Mismatch>),
}

/// What a failed hunk expected, and what the file holds there now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// 1-based line where the hunk was expected.
    pub at: usize,
    pub expected: Vec<String>,
    /// The closest-matching lines near that place (1-based start).
    pub found_at: usize,
    pub found: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct HunkReport {
    pub header: String,
    pub patch_line: usize,
    pub outcome: HunkOutcome,
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: String,
    pub hunks: Vec<HunkReport>,
    /// A file-level failure (missing file, file already exists).
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PatchReport {
    pub patch: String,
    pub files: Vec<FileReport>,
    /// Files of the patch that are not applied (`Patch::left_out`).
    pub left_out: Vec<String>,
}

impl PatchReport {
    pub fn failed(&self) -> bool {
        self.files.iter().any(|f| {
            f.error.is_some()
                || f.hunks
                    .iter()
                    .any(|h| matches!(h.outcome, HunkOutcome::Failed(_)))
        })
    }

    pub fn status(&self) -> &'static str {
        let all = self.files.iter().flat_map(|f| &f.hunks);
        if self.failed() {
            "fails"
        } else if all
            .clone()
            .any(|h| matches!(h.outcome, HunkOutcome::Fuzz { .. }))
        {
            "applies with fuzz"
        } else if all
            .clone()
            .any(|h| matches!(h.outcome, HunkOutcome::Offset(_)))
        {
            "applies with offset"
        } else {
            "applies cleanly"
        }
    }
}

impl fmt::Display for PatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.patch, self.status())?;
        for path in &self.left_out {
            writeln!(f, "  {path}: left out (vendor/sources.toml)")?;
        }
        for file in &self.files {
            if let Some(e) = &file.error {
                writeln!(f, "  {}: {e}", file.path)?;
            }
            for (n, h) in file.hunks.iter().enumerate() {
                let what = match &h.outcome {
                    HunkOutcome::Clean => "ok".to_string(),
                    HunkOutcome::Offset(o) => format!("ok, offset {o:+} lines"),
                    HunkOutcome::Fuzz { fuzz, offset } => {
                        format!("ok, fuzz {fuzz}, offset {offset:+} lines")
                    }
                    HunkOutcome::Failed(_) => "FAILED".to_string(),
                };
                writeln!(
                    f,
                    "  {} hunk #{} {} (patch line {}): {what}",
                    file.path,
                    n + 1,
                    h.header,
                    h.patch_line
                )?;
                if let HunkOutcome::Failed(m) = &h.outcome {
                    writeln!(f, "    {}", m.reason)?;
                    writeln!(f, "    the hunk expected, at line {}:", m.at)?;
                    for l in &m.expected {
                        writeln!(f, "      | {l}")?;
                    }
                    writeln!(f, "    the file holds, at line {}:", m.found_at)?;
                    for l in &m.found {
                        writeln!(f, "      | {l}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A text file as lines, remembering whether it ended with a newline.
struct Text {
    lines: Vec<String>,
    eol: bool,
}

impl Text {
    fn read(path: &Path) -> Result<Text> {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let s = String::from_utf8(bytes)
            .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        Ok(Self::from_str(&s))
    }

    fn from_str(s: &str) -> Text {
        if s.is_empty() {
            return Text {
                lines: Vec::new(),
                eol: true,
            };
        }
        let eol = s.ends_with('\n');
        let body = if eol { &s[..s.len() - 1] } else { s };
        Text {
            lines: body.split('\n').map(str::to_string).collect(),
            eol,
        }
    }

    fn render(&self) -> String {
        let mut s = self.lines.join("\n");
        if self.eol && !self.lines.is_empty() {
            s.push('\n');
        }
        s
    }
}

/// Apply one file's hunks to `text`, in order, like GNU patch: exact place,
/// then the nearest place the hunk matches, then with fuzz.
fn apply_hunks(text: &mut Text, fp: &FilePatch) -> Vec<HunkReport> {
    let mut reports = Vec::new();
    // How far the last hunk landed from where the patch put it.
    let mut drift: isize = 0;
    // Hunks whose change is missing from the text (failed in a rehearsal).
    let mut missing: isize = 0;
    // Lines before `floor` were already produced by earlier hunks.
    let mut floor = 0usize;
    for h in &fp.hunks {
        let old = h.old_lines();
        let new_count = h
            .lines
            .iter()
            .filter(|l| !matches!(l, Line::Remove(_)))
            .count();
        // Where the hunk belongs in the text as earlier hunks left it.
        let base = h.new_start.max(1) as isize - 1 - missing;
        let expected_at = (base + drift).max(0) as usize;
        let (lead, trail) = h.context_ends();
        let mut applied = None;
        'fuzz: for fuzz in 0..=MAX_FUZZ {
            let (drop_lead, drop_trail) = (fuzz.min(lead), fuzz.min(trail));
            if fuzz > 0 && (drop_lead + drop_trail == 0 || drop_lead + drop_trail >= old.len()) {
                break;
            }
            let want = &old[drop_lead..old.len() - drop_trail];
            let want_at = expected_at + drop_lead;
            if want.len() > text.lines.len() {
                continue;
            }
            for pos in nearest_first(want_at, floor, text.lines.len() - want.len()) {
                if text.lines[pos..pos + want.len()]
                    .iter()
                    .zip(want)
                    .all(|(a, b)| a == b)
                {
                    applied = Some((fuzz, pos - drop_lead, drop_lead, drop_trail));
                    break 'fuzz;
                }
            }
        }
        let Some((fuzz, start, drop_lead, drop_trail)) = applied else {
            let (found_at, found) = closest(&text.lines, &old, expected_at);
            missing += new_count as isize - old.len() as isize;
            reports.push(HunkReport {
                header: h.header.clone(),
                patch_line: h.patch_line,
                outcome: HunkOutcome::Failed(Box::new(Mismatch {
                    at: expected_at + 1,
                    expected: old.iter().map(|s| s.to_string()).collect(),
                    found_at: found_at + 1,
                    found,
                    reason: "the lines the hunk removes or keeps are not in the file".into(),
                })),
            });
            continue;
        };
        // Replace the matched old lines (minus dropped context) with the new side.
        let body = &h.lines[drop_lead..h.lines.len() - drop_trail];
        let old_count = body.iter().filter(|l| !matches!(l, Line::Add(_))).count();
        let new: Vec<String> = body
            .iter()
            .filter_map(|l| match l {
                Line::Context(s) | Line::Add(s) => Some(s.clone()),
                Line::Remove(_) => None,
            })
            .collect();
        let from = start + drop_lead;
        let touches_end = from + old_count == text.lines.len();
        let new_len = new.len();
        text.lines.splice(from..from + old_count, new);
        if touches_end && drop_trail == 0 {
            if h.new_no_eol {
                text.eol = false;
            } else if h.old_no_eol {
                text.eol = true;
            }
        }
        drift = start as isize - base;
        floor = from + new_len;
        reports.push(HunkReport {
            header: h.header.clone(),
            patch_line: h.patch_line,
            outcome: match (fuzz, drift) {
                (0, 0) => HunkOutcome::Clean,
                (0, o) => HunkOutcome::Offset(o),
                (f, o) => HunkOutcome::Fuzz { fuzz: f, offset: o },
            },
        });
    }
    reports
}

/// Positions from `at` outwards, within `floor..=max`.
fn nearest_first(at: usize, floor: usize, max: usize) -> impl Iterator<Item = usize> {
    let at = at.clamp(floor, max.max(floor));
    let span = max.saturating_sub(floor) + 1;
    (0..=span).flat_map(move |d| {
        let down = at.checked_sub(d).filter(|p| *p >= floor && d > 0);
        let up = Some(at + d).filter(|p| *p <= max);
        up.into_iter().chain(down)
    })
}

/// The window near `at` that shares the most lines with `want`, for reports.
fn closest(lines: &[String], want: &[&str], at: usize) -> (usize, Vec<String>) {
    let n = want.len().max(1);
    let lo = at.saturating_sub(200);
    let hi = (at + 200).min(lines.len().saturating_sub(1));
    let mut best = (at.min(lines.len()), 0usize);
    for pos in lo..=hi.max(lo) {
        let score = (0..n)
            .filter(|k| lines.get(pos + k).map(String::as_str) == want.get(*k).copied())
            .count();
        if score > best.1 || (score == best.1 && pos.abs_diff(at) < best.0.abs_diff(at)) {
            best = (pos, score);
        }
    }
    let start = if best.1 == 0 {
        at.min(lines.len())
    } else {
        best.0
    };
    (start, lines.iter().skip(start).take(n).cloned().collect())
}

/// Apply `patch` inside `tree`, writing changed files in place.
pub fn apply_patch(tree: &Path, patch: &Patch, write: bool) -> Result<PatchReport> {
    let mut report = PatchReport {
        patch: patch.name.clone(),
        files: Vec::new(),
        left_out: patch.left_out.clone(),
    };
    for fp in &patch.files {
        let path = fp.path().to_string();
        if path.split('/').any(|c| c == ".." || c.is_empty()) || path.starts_with('/') {
            bail!("{}: refuses to touch `{path}` outside the tree", patch.name);
        }
        let target = tree.join(&path);
        let mut file_report = FileReport {
            path: path.clone(),
            hunks: Vec::new(),
            error: None,
        };
        let existing = target.is_file();
        let mut text = match (&fp.old, existing) {
            (None, true) => {
                file_report.error = Some("the patch creates it, but it already exists".into());
                report.files.push(file_report);
                continue;
            }
            (None, false) => Text {
                lines: Vec::new(),
                eol: true,
            },
            // `diff -N` writes new files against an empty `a/` side.
            (Some(_), false)
                if fp
                    .hunks
                    .iter()
                    .all(|h| h.old_start == 0 && h.old_lines().is_empty()) =>
            {
                Text {
                    lines: Vec::new(),
                    eol: true,
                }
            }
            (Some(_), false) => {
                file_report.error =
                    Some("missing: the patch changes a file the tree does not have".into());
                report.files.push(file_report);
                continue;
            }
            (Some(_), true) => Text::read(&target)?,
        };
        file_report.hunks = apply_hunks(&mut text, fp);
        let ok = !file_report
            .hunks
            .iter()
            .any(|h| matches!(h.outcome, HunkOutcome::Failed(_)));
        if ok && write {
            if fp.new.is_none() {
                fs::remove_file(&target)
                    .with_context(|| format!("removing {}", target.display()))?;
            } else {
                let mode = match fp.new_mode {
                    Some(m) => m & 0o777,
                    None if existing => fs::metadata(&target)?.permissions().mode() & 0o777,
                    None => 0o644,
                };
                fsutil::write_atomic_mode(&target, text.render().as_bytes(), mode)?;
            }
        }
        report.files.push(file_report);
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// Series

/// A series folder: `series` lists patch file names in order; a
/// distribution's security queue may follow it.
#[derive(Debug, Clone)]
pub struct Series {
    pub dir: PathBuf,
    pub patches: Vec<Patch>,
    /// CVE patches of a distribution's package, applied after `patches`.
    pub security: Option<Queue>,
}

/// The patches taken from a distribution's patch archive.
#[derive(Debug, Clone)]
pub struct Queue {
    /// The archive's file name (`redis_7.0.15-1~deb12u10.debian.tar.xz`).
    pub archive: String,
    /// The package version it belongs to (`5:7.0.15-1~deb12u10`).
    pub debian: String,
    /// Folder of the patches inside the archive (`debian/patches`).
    pub folder: String,
    pub patches: Vec<Patch>,
}

impl Series {
    pub fn load(dir: &Path) -> Result<Series> {
        let list = dir.join("series");
        let text = fs::read_to_string(&list).with_context(|| {
            format!(
                "reading {}: a patch folder needs a `series` file",
                list.display()
            )
        })?;
        let mut patches = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let name = line.split('#').next().unwrap_or("").trim();
            if name.is_empty() {
                continue;
            }
            let path = dir.join(name);
            let body = fs::read_to_string(&path).with_context(|| {
                format!(
                    "{}:{}: patch `{name}` is listed but {} cannot be read",
                    list.display(),
                    n + 1,
                    path.display()
                )
            })?;
            patches.push(parse(name, &body)?);
        }
        Ok(Series {
            dir: dir.to_path_buf(),
            patches,
            security: None,
        })
    }

    /// No patches at all (a pin without a series), anchored at `dir`.
    pub fn empty(dir: &Path) -> Series {
        Series {
            dir: dir.to_path_buf(),
            patches: Vec::new(),
            security: None,
        }
    }

    /// Upstream as released, built for the target: the portability patches
    /// only (`Kind: portability`), no fixes and no security queue.
    pub fn portability_only(&self) -> Series {
        Series {
            dir: self.dir.clone(),
            patches: self
                .patches
                .iter()
                .filter(|p| p.kind.as_deref() == Some("portability"))
                .cloned()
                .collect(),
            security: None,
        }
    }

    /// Every patch in the order it is applied, with where it comes from
    /// (a file of the series folder, or a member of the queue's archive).
    pub fn applied(&self) -> Vec<(&Patch, String)> {
        let mut out: Vec<(&Patch, String)> = self
            .patches
            .iter()
            .map(|p| (p, self.dir.join(&p.name).display().to_string()))
            .collect();
        if let Some(q) = &self.security {
            out.extend(q.patches.iter().map(|p| (p, q.location(&p.name))));
        }
        out
    }

    /// `(name, sha256)` of every patch, for cache keys; a security patch is
    /// named with its archive (`redis_….debian.tar.xz/CVE-….patch`).
    pub fn fingerprint(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .patches
            .iter()
            .map(|p| (p.name.clone(), p.sha256.clone()))
            .collect();
        if let Some(q) = &self.security {
            out.extend(q.patches.iter().map(|p| {
                let mut name = format!("{}/{}", q.archive, p.name);
                for f in &p.left_out {
                    name.push_str(&format!(" without {f}"));
                }
                (name, p.sha256.clone())
            }));
        }
        out
    }
}

impl Queue {
    /// Where a patch of the queue is: `archive: folder/name`.
    pub fn location(&self, name: &str) -> String {
        format!("{}: {}/{name}", self.archive, self.folder)
    }

    /// The same as a reference: `archive#folder/name`.
    pub fn reference(&self, name: &str) -> String {
        format!("{}#{}/{name}", self.archive, self.folder)
    }
}

/// A pinned tree with its series applied.
#[derive(Debug, Clone)]
pub struct PatchedTree {
    pub dir: PathBuf,
    pub reports: Vec<PatchReport>,
}

/// Copy `pristine` to `dest` and apply `series`; on any failure nothing is left
/// at `dest` and the error holds the failing patch's report.
pub fn apply_series(pristine: &Path, series: &Series, dest: &Path) -> Result<PatchedTree> {
    let staging = fsutil::Staging::beside(dest)?;
    fsutil::copy_tree(pristine, staging.path())?;
    let mut reports = Vec::new();
    for (patch, location) in series.applied() {
        let report = apply_patch(staging.path(), patch, true)?;
        if report.failed() {
            bail!(
                "patch {location} does not apply to {} (nothing was changed):\n{report}",
                pristine.display()
            );
        }
        reports.push(report);
    }
    staging.commit(dest)?;
    Ok(PatchedTree {
        dir: dest.to_path_buf(),
        reports,
    })
}

/// The outcome of a rehearsal (`cargo xtask patch --check`, `cargo xtask
/// upgrade`): every patch of a series tried in order against a tree.
#[derive(Debug, Clone)]
pub struct Rehearsal {
    /// The series, as the user knows it (`patches/redis/8.0`).
    pub series: String,
    /// What it was tried against (`redis 8.0.2`).
    pub against: String,
    pub reports: Vec<PatchReport>,
}

impl Rehearsal {
    pub fn failed(&self) -> usize {
        self.reports.iter().filter(|r| r.failed()).count()
    }
}

impl fmt::Display for Rehearsal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "series {} against {}:", self.series, self.against)?;
        for r in &self.reports {
            write!(f, "{r}")?;
        }
        let failed = self.failed();
        writeln!(
            f,
            "{} patches: {} apply, {failed} fail",
            self.reports.len(),
            self.reports.len() - failed
        )
    }
}

/// Rehearse `series` on a scratch copy of `pristine`: every patch is tried in
/// order on the result of the ones before; nothing outside scratch changes.
pub fn check_series(pristine: &Path, series: &Series, scratch: &Path) -> Result<Vec<PatchReport>> {
    let staging = fsutil::Staging::beside(scratch)?;
    fsutil::copy_tree(pristine, staging.path())?;
    let mut reports = Vec::new();
    for (patch, _) in series.applied() {
        // Write the hunks that apply, so later patches see them.
        reports.push(apply_patch(staging.path(), patch, true)?);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, body) in files {
            let path = d.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, body).unwrap();
        }
        d
    }

    const SRC: &str = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n";
    const PATCH: &str =
        "--- a/f.c\n+++ b/f.c\n@@ -3,3 +3,4 @@\n three\n four\n+four and a half\n five\n";

    #[test]
    fn applies_cleanly() {
        let d = tree(&[("f.c", SRC)]);
        let r = apply_patch(d.path(), &parse("p", PATCH).unwrap(), true).unwrap();
        assert_eq!(r.status(), "applies cleanly");
        assert_eq!(
            fs::read_to_string(d.path().join("f.c")).unwrap(),
            "one\ntwo\nthree\nfour\nfour and a half\nfive\nsix\nseven\n"
        );
    }

    #[test]
    fn applies_with_offset() {
        let d = tree(&[("f.c", &format!("zero\nzero\n{SRC}"))]);
        let r = apply_patch(d.path(), &parse("p", PATCH).unwrap(), true).unwrap();
        assert_eq!(r.status(), "applies with offset");
        assert_eq!(r.files[0].hunks[0].outcome, HunkOutcome::Offset(2));
        assert!(fs::read_to_string(d.path().join("f.c"))
            .unwrap()
            .contains("four\nfour and a half\nfive"));
    }

    #[test]
    fn applies_with_fuzz() {
        let d = tree(&[("f.c", "one\ntwo\nTHREE\nfour\nfive\nsix\n")]);
        let r = apply_patch(d.path(), &parse("p", PATCH).unwrap(), true).unwrap();
        assert_eq!(r.status(), "applies with fuzz");
        assert!(matches!(
            r.files[0].hunks[0].outcome,
            HunkOutcome::Fuzz { fuzz: 1, .. }
        ));
    }

    #[test]
    fn failure_names_file_hunk_and_shows_both_sides() {
        let d = tree(&[("f.c", "one\ntwo\nthree\nFOUR\nfive\n")]);
        let r = apply_patch(d.path(), &parse("0001-x.patch", PATCH).unwrap(), false).unwrap();
        assert!(r.failed());
        let text = r.to_string();
        assert!(text.contains("0001-x.patch: fails"), "{text}");
        assert!(
            text.contains("f.c hunk #1 @@ -3,3 +3,4 @@ (patch line 3): FAILED"),
            "{text}"
        );
        assert!(text.contains("| four") && text.contains("| FOUR"), "{text}");
    }

    #[test]
    fn series_failure_leaves_no_half_patched_tree() {
        let pristine = tree(&[("f.c", SRC), ("g.c", "alpha\n")]);
        let series_dir = tree(&[
            ("series", "# order matters\n0001-ok.patch\n0002-bad.patch\n"),
            ("0001-ok.patch", PATCH),
            (
                "0002-bad.patch",
                "--- a/g.c\n+++ b/g.c\n@@ -1 +1 @@\n-beta\n+gamma\n",
            ),
        ]);
        let series = Series::load(series_dir.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("patched");
        let err = format!(
            "{:#}",
            apply_series(pristine.path(), &series, &dest).unwrap_err()
        );
        assert!(
            err.contains("0002-bad.patch") && err.contains("g.c hunk #1"),
            "{err}"
        );
        assert!(!dest.exists());
        assert_eq!(
            fs::read_dir(out.path()).unwrap().count(),
            0,
            "no staging left"
        );
        assert_eq!(
            fs::read_to_string(pristine.path().join("f.c")).unwrap(),
            SRC,
            "pristine untouched"
        );
    }

    #[test]
    fn creates_files_and_handles_missing_newline() {
        let d = tree(&[("h.txt", "a\nb")]);
        let p = "--- /dev/null\n+++ b/new/file.h\n@@ -0,0 +1,2 @@\n+x\n+y\n--- a/h.txt\n+++ b/h.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n";
        let r = apply_patch(d.path(), &parse("p", p).unwrap(), true).unwrap();
        assert!(!r.failed(), "{r}");
        assert_eq!(
            fs::read_to_string(d.path().join("new/file.h")).unwrap(),
            "x\ny\n"
        );
        assert_eq!(
            fs::read_to_string(d.path().join("h.txt")).unwrap(),
            "a\nc\n"
        );
    }

    #[test]
    fn missing_file_and_bad_syntax_are_reported() {
        let d = tree(&[]);
        let r = apply_patch(d.path(), &parse("p", PATCH).unwrap(), false).unwrap();
        assert!(r.to_string().contains("missing"), "{r}");
        assert!(parse("p", "just text\n").is_err());
        assert!(
            parse("p", "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n").is_err(),
            "cut-short hunk"
        );
    }

    #[test]
    fn patch_headers_name_their_cves() {
        let text = "Subject: x\n\nCVE: CVE-2026-1, CVE-2026-2\n---\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(parse("p", text).unwrap().cves, ["CVE-2026-1", "CVE-2026-2"]);
        let kind = "Subject: y\nKind: portability\n\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(
            parse("p", kind).unwrap().kind.as_deref(),
            Some("portability")
        );
        assert!(parse("p", PATCH).unwrap().cves.is_empty());
    }

    #[test]
    fn deleted_files_are_removed_only_when_writing() {
        let d = tree(&[("gone.c", "a\nb\n"), ("kept.c", "x\n")]);
        let p = parse(
            "p",
            "--- a/gone.c\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n",
        )
        .unwrap();
        assert_eq!(p.files[0].new, None);
        let rehearsal = apply_patch(d.path(), &p, false).unwrap();
        assert_eq!(rehearsal.status(), "applies cleanly");
        assert!(
            d.path().join("gone.c").is_file(),
            "a rehearsal changes nothing"
        );
        apply_patch(d.path(), &p, true).unwrap();
        assert!(!d.path().join("gone.c").exists());
        assert!(d.path().join("kept.c").is_file());
        // Deleting a file whose text differs fails and leaves it.
        let d = tree(&[("gone.c", "a\nchanged\n")]);
        let r = apply_patch(d.path(), &p, true).unwrap();
        assert_ne!(r.status(), "applies cleanly");
        assert!(d.path().join("gone.c").is_file());
    }

    fn series(patches: &[(&str, &str)], queue: &[(&str, &str, &[&str])]) -> Series {
        Series {
            dir: PathBuf::from("patches/redis/7.0"),
            patches: patches
                .iter()
                .map(|(name, text)| parse(name, text).unwrap())
                .collect(),
            security: (!queue.is_empty()).then(|| Queue {
                archive: "redis_7.0.15-1~deb12u10.debian.tar.xz".into(),
                debian: "5:7.0.15-1~deb12u10".into(),
                folder: "debian/patches".into(),
                patches: queue
                    .iter()
                    .map(|(name, text, without)| Patch {
                        left_out: without.iter().map(|w| w.to_string()).collect(),
                        ..parse(name, text).unwrap()
                    })
                    .collect(),
            }),
        }
    }

    fn with_kind(kind: &str) -> String {
        format!("Subject: x\nKind: {kind}\n\n{PATCH}")
    }

    /// Upstream as released: the portability patches only, in series
    /// order, no fix of ours and no security queue.
    #[test]
    fn portability_only_keeps_the_portability_patches_and_drops_the_queue() {
        let (port1, port2, fix) = (
            with_kind("portability"),
            with_kind("portability"),
            with_kind("fix"),
        );
        let s = series(
            &[
                ("0001-memcpy.patch", &port1),
                ("0002-loader.patch", &fix),
                ("0003-plain.patch", PATCH),
                ("0004-glibc.patch", &port2),
            ],
            &[("CVE-2025-1.patch", PATCH, &[])],
        );
        let up = s.portability_only();
        let names: Vec<&str> = up.patches.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["0001-memcpy.patch", "0004-glibc.patch"]);
        assert!(up.security.is_none());
        assert_eq!(up.dir, s.dir);
    }

    /// The cache key's view of a series: every patch by name and content,
    /// queue patches named with their archive and what is left out of them.
    #[test]
    fn the_fingerprint_changes_with_every_patch_and_nothing_else() {
        let other = PATCH.replace("four and a half", "four and three quarters");
        let base = series(&[("0001.patch", PATCH)], &[("CVE-1.patch", PATCH, &[])]);
        let fp = base.fingerprint();
        let sha = parse("p", PATCH).unwrap().sha256;
        assert_eq!(
            fp,
            [
                ("0001.patch".to_string(), sha.clone()),
                (
                    "redis_7.0.15-1~deb12u10.debian.tar.xz/CVE-1.patch".to_string(),
                    sha.clone()
                ),
            ]
        );
        let changes = [
            series(&[("0001.patch", &other)], &[("CVE-1.patch", PATCH, &[])]),
            series(&[("0002.patch", PATCH)], &[("CVE-1.patch", PATCH, &[])]),
            series(&[("0001.patch", PATCH)], &[("CVE-1.patch", &other, &[])]),
            series(
                &[("0001.patch", PATCH)],
                &[("CVE-1.patch", PATCH, &["tests/x.tcl"])],
            ),
            series(&[("0001.patch", PATCH)], &[]),
        ];
        for changed in changes {
            assert_ne!(changed.fingerprint(), fp);
        }
        // The folder it was read from is not part of it.
        let moved = Series {
            dir: PathBuf::from("/elsewhere"),
            ..base.clone()
        };
        assert_eq!(moved.fingerprint(), fp);
    }

    #[test]
    fn refuses_paths_outside_the_tree() {
        let d = tree(&[]);
        let p = parse("p", "--- a/../x\n+++ b/../x\n@@ -0,0 +1 @@\n+x\n").unwrap();
        assert!(apply_patch(d.path(), &p, true).is_err());
    }
}
