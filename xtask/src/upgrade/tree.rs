//! What the new tree tells: its release date and licence files; and the
//! copy of a previous line's series.

use super::*;

/// Licence files near the top of a tree (`COPYING`, `LICENSE*`, `COPYRIGHT`),
/// at most three folders deep, sorted.
pub(super) fn licence_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, rel: &Path, depth: usize, out: &mut Vec<String>) -> Result<()> {
        let here = root.join(rel);
        for e in fs::read_dir(&here).with_context(|| format!("reading {}", here.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let child = rel.join(&name);
            let ft = e.file_type()?;
            if ft.is_dir() && depth < 3 {
                walk(root, &child, depth + 1, out)?;
            } else if ft.is_file() {
                let upper = name.to_ascii_uppercase();
                if upper == "COPYING"
                    || upper.starts_with("COPYING.")
                    || upper.starts_with("LICENSE")
                    || upper.starts_with("COPYRIGHT")
                {
                    out.push(child.display().to_string());
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), 1, &mut out)?;
    out.sort();
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// `9 Jan 2024`-like words (day, month name, year in any order of the first
/// two) → `2024-01-09`.
pub(super) fn date_from_words(words: &[&str]) -> Option<String> {
    for w in words.windows(3) {
        let clean = |s: &str| {
            s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_ascii_lowercase()
        };
        let (a, b, c) = (clean(w[0]), clean(w[1]), clean(w[2]));
        let month = |s: &str| {
            MONTHS
                .iter()
                .position(|m| s.len() >= 3 && s.starts_with(m))
                .map(|i| i + 1)
        };
        let day = |s: &str| s.parse::<u32>().ok().filter(|d| (1..=31).contains(d));
        let Some(year) = c.parse::<u32>().ok().filter(|y| (1990..=9999).contains(y)) else {
            continue;
        };
        let (d, m) = match (day(&a), month(&b), month(&a), day(&b)) {
            (Some(d), Some(m), _, _) => (d, m),
            (_, _, Some(m), Some(d)) => (d, m),
            _ => continue,
        };
        return Some(format!("{year:04}-{m:02}-{d:02}"));
    }
    None
}

/// The release date the tree itself states: Redis's `00-RELEASENOTES`
/// (`Redis 7.0.15 Released Tue 09 Jan 2024 …`), OpenSSL's `VERSION.dat`
/// (`RELEASE_DATE="27 Jan 2026"`).
pub fn release_date(component: Component, version: &str, dir: &Path) -> Result<String> {
    let (file, found) = match component {
        Component::Redis => {
            let file = "00-RELEASENOTES";
            let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
            let heading = format!("Redis {version} ");
            let date = text
                .lines()
                .filter(|l| l.contains(&heading) || l.contains(&format!("Redis {version}(")))
                .find_map(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    date_from_words(&words)
                });
            (file, date)
        }
        Component::Openssl => {
            let file = "VERSION.dat";
            let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
            let date = text.lines().find_map(|l| {
                let v = l.strip_prefix("RELEASE_DATE=")?.trim_matches('"');
                date_from_words(&v.split_whitespace().collect::<Vec<_>>())
            });
            (file, date)
        }
    };
    found.with_context(|| {
        format!(
            "{component} {version}: {file} in {} gives no full release date (day, month, year); \
             pass --released YYYY-MM-DD, the date of the upstream release (the release \
             announcement or the tag), so SOURCE_DATE_EPOCH stays that date",
            dir.display()
        )
    })
}

/// Copy the series in `from` (its `series` file and the patches it lists) into
/// the empty folder `to`, noting where it started in the new `series` file.
pub fn copy_series(from: &Path, to: &Path, header: &str) -> Result<Series> {
    let list = from.join("series");
    let text = fs::read_to_string(&list).with_context(|| format!("reading {}", list.display()))?;
    let series = Series::load(from)?;
    for p in &series.patches {
        let src = from.join(&p.name);
        fs::copy(&src, to.join(&p.name)).with_context(|| format!("copying {}", src.display()))?;
    }
    fsutil::write_atomic(&to.join("series"), format!("# {header}\n{text}").as_bytes())?;
    Series::load(to)
}
