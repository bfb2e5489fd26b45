//! Unified diffs parsed into files and hunks.

use super::*;

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
    /// The targets it is for (`Only-for: x86_64 glibc`): an architecture
    /// and/or a C library, all of which a target must have; empty: every
    /// target.
    pub only_for: Vec<String>,
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
    pub(super) fn old_lines(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Context(s) | Line::Remove(s) => Some(s.as_str()),
                Line::Add(_) => None,
            })
            .collect()
    }

    /// Leading and trailing context lines, the most fuzz can drop.
    pub(super) fn context_ends(&self) -> (usize, usize) {
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
    let only_for = header_values(text, "Only-for");
    if let Some(w) = only_for
        .iter()
        .find(|w| !ARCHES.contains(&w.as_str()) && !LIBCS.contains(&w.as_str()))
    {
        bail!(
            "{name}: `Only-for: {w}` names no architecture ({}) or C library ({}); fix the header",
            ARCHES.join(", "),
            LIBCS.join(", ")
        );
    }
    for kind in [&ARCHES[..], &LIBCS[..]] {
        let named: Vec<&str> = only_for
            .iter()
            .map(String::as_str)
            .filter(|w| kind.contains(w))
            .collect();
        if named.len() > 1 {
            bail!(
                "{name}: `Only-for: {}` names {} at once, which no target is; keep one",
                only_for.join(" "),
                named.join(" and ")
            );
        }
    }
    Ok(Patch {
        name: name.to_string(),
        sha256: treehash::sha256_bytes(text.as_bytes()),
        cves: header_values(text, "CVE"),
        kind: header_values(text, "Kind").into_iter().next(),
        only_for,
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
