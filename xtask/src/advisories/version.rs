//! Upstream versions (`8.0.2`, `3.5.7`, `1.1.1w`) and the ranges advisories
//! name them by.

use super::*;

/// `7.0.15` as numbers; a part that is not a number (`1.1.1zj`) keeps its
/// leading digits and its suffix, compared after them.
/// Missing parts count as zero: `8.0` is `8.0.0`.
#[derive(Debug, Clone)]
pub struct Version(Vec<(u64, String)>);

impl Version {
    pub fn parse(s: &str) -> Result<Version> {
        let s = s.trim();
        if s.is_empty() {
            bail!("empty version");
        }
        let mut parts = Vec::new();
        for p in s.split('.') {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                bail!("`{s}` is not a version (dot-separated numbers)");
            }
            parts.push((digits.parse()?, p[digits.len()..].to_string()));
        }
        Ok(Version(parts))
    }
}

impl Version {
    /// `major.minor`: the release line.
    pub fn line(&self) -> String {
        let n = |i: usize| self.0.get(i).map_or(0, |p| p.0);
        format!("{}.{}", n(0), n(1))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.0.len().max(other.0.len());
        let zero = (0, String::new());
        for i in 0..n {
            let a = self.0.get(i).unwrap_or(&zero);
            let b = other.0.get(i).unwrap_or(&zero);
            let o =
                a.0.cmp(&b.0)
                    .then_with(|| a.1.len().cmp(&b.1.len()))
                    .then_with(|| a.1.cmp(&b.1));
            if o.is_ne() {
                return o;
            }
        }
        Ordering::Equal
    }
}

/// A conjunction of comparisons: `>= 7.4.0, < 7.4.6`.
#[derive(Debug, Clone)]
pub struct Range(Vec<(Op, Version)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Range {
    pub fn parse(s: &str) -> Result<Range> {
        let mut out = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (op, rest) = [
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<", Op::Lt),
                (">", Op::Gt),
                ("=", Op::Eq),
            ]
            .iter()
            .find_map(|(t, op)| part.strip_prefix(t).map(|r| (*op, r)))
            .with_context(|| {
                format!("`{part}` is not `<`, `<=`, `>`, `>=` or `=` and a version")
            })?;
            out.push((op, Version::parse(rest)?));
        }
        Ok(Range(out))
    }

    pub fn contains(&self, v: &Version) -> bool {
        self.0.iter().all(|(op, b)| match op {
            Op::Lt => v < b,
            Op::Le => v <= b,
            Op::Gt => v > b,
            Op::Ge => v >= b,
            Op::Eq => v == b,
        })
    }

    /// The version the range ends before (`< X`), the fix of that branch.
    pub(super) fn fixed_in(&self) -> Option<&Version> {
        self.0.iter().find(|(op, _)| *op == Op::Lt).map(|(_, v)| v)
    }

    /// Where the range starts (`>= X`), if it says.
    pub(super) fn start(&self) -> Option<&Version> {
        self.0
            .iter()
            .find(|(op, _)| matches!(op, Op::Ge | Op::Gt | Op::Eq))
            .map(|(_, v)| v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(n, s)| format!("{n}{s}")).collect();
        f.write_str(&parts.join("."))
    }
}
