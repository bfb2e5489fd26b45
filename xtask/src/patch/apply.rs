//! One patch applied to a tree, hunk by hunk, with offset and fuzz like GNU
//! patch; a report per hunk.

use super::*;

/// Most context lines a hunk may lose at each end and still apply.
const MAX_FUZZ: usize = 2;

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
