//! The release tree's files for hosts and people, beside `bin/`: Redis's
//! configuration files (as the series left them), the SysV init scripts and
//! systemd units, `install.sh`, `README` and `RELEASE.md`.
//!
//! The service files and `install.sh` are `packaging/` in the repository;
//! the init script and the unit are one template each, filled in here for
//! `redis-server` and `redis-sentinel`. They name the default prefix,
//! `/opt/portable-redis`, which `install.sh` replaces by its `--prefix`.

use std::fmt::Write as _;

use anyhow::Result;

/// Where the release installs by default (`install.sh --prefix`).
pub const DEFAULT_PREFIX: &str = "/opt/portable-redis";

const INIT_SCRIPT: &str = include_str!("../../packaging/init.d/redis.in");
const SYSTEMD_UNIT: &str = include_str!("../../packaging/systemd/redis.service.in");
const INSTALL_SH: &str = include_str!("../../packaging/install.sh");
const README: &str = include_str!("../../packaging/README.in");

/// A file of the release tree: its path below the release's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub path: String,
    pub bytes: Vec<u8>,
    pub executable: bool,
}

impl TreeFile {
    fn new(path: impl Into<String>, text: String, executable: bool) -> TreeFile {
        TreeFile {
            path: path.into(),
            bytes: text.into_bytes(),
            executable,
        }
    }
}

/// A service the release defines: its program (in `bin/`), its
/// configuration file (in `etc/`) and what it is.
struct Service {
    name: &'static str,
    conf: &'static str,
    description: &'static str,
}

const SERVICES: &[Service] = &[
    Service {
        name: "redis-server",
        conf: "redis.conf",
        description: "Redis key-value store",
    },
    Service {
        name: "redis-sentinel",
        conf: "sentinel.conf",
        description: "Redis Sentinel",
    },
];

fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    pairs.iter().fold(template.to_string(), |t, (k, v)| {
        t.replace(&format!("@{k}@"), v)
    })
}

/// The init scripts, the units and `install.sh`.
pub fn service_files() -> Vec<TreeFile> {
    let mut out = Vec::new();
    for s in SERVICES {
        let pairs = [
            ("NAME", s.name),
            ("CONF", s.conf),
            ("DESCRIPTION", s.description),
            ("PREFIX", DEFAULT_PREFIX),
        ];
        out.push(TreeFile::new(
            format!("etc/init.d/{}", s.name),
            fill(INIT_SCRIPT, &pairs),
            true,
        ));
        out.push(TreeFile::new(
            format!("lib/systemd/system/{}.service", s.name),
            fill(SYSTEMD_UNIT, &pairs),
            false,
        ));
    }
    out.push(TreeFile::new("install.sh", INSTALL_SH.to_string(), true));
    out
}

/// What the README names.
pub struct ReadmeFacts<'a> {
    pub redis: &'a str,
    /// The target's `runs-on`: `x86_64 Linux, glibc 2.11 and later`.
    pub runs_on: &'a str,
    pub openssl: &'a str,
    /// The policy's glibc floor; `None` for a static target.
    pub glibc: Option<&'a str>,
    pub kernel: &'a str,
    /// The target's `hosts`: the distributions it runs on, by name.
    pub hosts: Option<&'a str>,
}

/// What the programs need on the host, and the rest of the README's first
/// paragraph, wrapped as it reads.
fn host_needs(glibc: Option<&str>, kernel: &str, hosts: Option<&str>) -> String {
    let needs = match glibc {
        Some(glibc) => format!(
            "need nothing on the host but glibc {glibc} or later and Linux {kernel} or \
             later{}.",
            hosts.map(|h| format!(": {h}")).unwrap_or_default()
        ),
        None => format!(
            "need nothing on the host but Linux {kernel} or later: each is one static \
             file with its C library inside, for any distribution, Alpine included, \
             and for a root that holds nothing else."
        ),
    };
    wrap(
        &format!("{needs} RELEASE.md says what it was built from and how it was checked."),
        74,
    )
}

/// `text`'s words in lines of at most `width` characters (a longer word
/// stands alone).
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}

pub fn readme(f: &ReadmeFacts) -> TreeFile {
    let needs = host_needs(f.glibc, f.kernel, f.hosts);
    let text = fill(
        README,
        &[
            ("VERSION", f.redis),
            ("RUNS_ON", f.runs_on),
            ("OPENSSL", f.openssl),
            ("NEEDS", &needs),
        ],
    );
    // The underline follows the title's length.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    if lines.len() > 1 {
        lines[1] = "=".repeat(lines[0].chars().count());
    }
    TreeFile::new("README", lines.join("\n") + "\n", false)
}

/// A pinned input, for RELEASE.md.
pub struct SourceNote {
    pub name: String,
    pub version: String,
    pub tree: String,
    /// The distribution's security queue applied, e.g. Debian `7.0.15-1~deb12u10`.
    pub queue: Option<String>,
}

/// One applied patch, for RELEASE.md.
pub struct PatchNote {
    pub component: String,
    /// Our series folder or the queue's archive.
    pub origin: String,
    pub name: String,
    /// Its `Subject:` (or DEP-3 `Description:`) line.
    pub subject: String,
    pub cves: Vec<String>,
}

/// What RELEASE.md says.
pub struct ReleaseFacts<'a> {
    pub name: &'a str,
    pub sources: Vec<SourceNote>,
    pub zig: &'a str,
    pub target: &'a str,
    pub patches: Vec<PatchNote>,
    pub allowed_cves: Vec<String>,
    pub verify: &'a elfcheck::VerifyReport,
    pub smoke: &'a crate::smoke::SmokeReport,
}

/// RELEASE.md: what was built from what, the patches and why, the checks.
pub fn release_notes(f: &ReleaseFacts) -> Result<TreeFile> {
    let mut s = String::new();
    writeln!(s, "# {}\n", f.name)?;
    writeln!(s, "## Built from\n")?;
    for src in &f.sources {
        write!(s, "- {} {} (tree `{}`)", src.name, src.version, src.tree)?;
        if let Some(q) = &src.queue {
            write!(s, " with the security patches of Debian's {q}")?;
        }
        writeln!(s)?;
    }
    writeln!(
        s,
        "- zig {} for `{}`, in a sandbox without network or host headers\n",
        f.zig, f.target
    )?;
    writeln!(s, "## Patches, in the order applied\n")?;
    let mut groups: Vec<((&str, &str), Vec<&PatchNote>)> = Vec::new();
    for p in &f.patches {
        let key = (p.component.as_str(), p.origin.as_str());
        match groups.last_mut() {
            Some((k, list)) if *k == key => list.push(p),
            _ => groups.push((key, vec![p])),
        }
    }
    for ((component, origin), list) in groups {
        writeln!(s, "{component} ({origin}):\n")?;
        for p in list {
            write!(s, "- `{}`: {}", p.name, p.subject)?;
            if !p.cves.is_empty() {
                write!(s, " (fixes {})", p.cves.join(", "))?;
            }
            writeln!(s)?;
        }
        writeln!(s)?;
    }
    if !f.allowed_cves.is_empty() {
        writeln!(
            s,
            "Released with open CVEs (`--allow-cve`): {}\n",
            f.allowed_cves.join(", ")
        )?;
    }
    let v = f.verify;
    let findings = v.violations().count();
    writeln!(s, "## Checks\n")?;
    writeln!(
        s,
        "- verify, policy `{}` (sha256 `{}`): {} of {} programs passed, {} findings; \
         {}, OpenSSL {} linked in statically. The table is `share/doc/VERIFY.txt`, the \
         record `share/doc/VERIFY.json`.",
        v.policy.name,
        v.policy.sha256,
        v.files.iter().filter(|r| r.passed()).count(),
        v.files.len(),
        findings,
        match v.policy.glibc {
            Some(glibc) => format!(
                "glibc {glibc} at most, Linux {} at most, NEEDED only glibc's libraries",
                v.policy.kernel
            ),
            None => format!(
                "static: no interpreter, no library needed, no symbol imported, Linux {} at most",
                v.policy.kernel
            ),
        },
        v.policy.openssl.as_deref().unwrap_or("(not pinned)"),
    )?;
    writeln!(
        s,
        "- smoke: the packaged redis-server ({}) answered {} over TCP and {} over TLS{}.",
        f.smoke.server_version,
        f.smoke.plain_ping,
        f.smoke.tls_ping,
        f.smoke
            .emulator
            .as_ref()
            .map(|e| format!(", run under {e}"))
            .unwrap_or_default()
    )?;
    writeln!(
        s,
        "\n`BUILDINFO.json` records every input and output with its hash; \
         `share/doc/sbom.cdx.json` is the CycloneDX SBOM with the CVE statements (VEX)."
    )?;
    Ok(TreeFile::new("RELEASE.md", s, false))
}

/// A patch's one-line reason: its `Subject:` (git's `[PATCH]` tag dropped),
/// or DEP-3's `Description:`, or the first line of a header without
/// either, from the header before the first diff.
pub fn subject(text: &str) -> String {
    let header: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("--- ") && !l.starts_with("diff "))
        .collect();
    ["Subject:", "Description:"]
        .iter()
        .find_map(|field| {
            header
                .iter()
                .find_map(|l| l.strip_prefix(field))
                .map(|v| {
                    let v = v.trim();
                    match v.strip_prefix("[PATCH").and_then(|r| r.split_once(']')) {
                        Some((_, rest)) => rest.trim().to_string(),
                        None => v.to_string(),
                    }
                })
                .filter(|v| !v.is_empty())
        })
        .or_else(|| {
            // A plain header: its first line of prose.
            header
                .iter()
                .map(|l| l.trim())
                .find(|l| {
                    !l.is_empty()
                        && !l.starts_with("From ")
                        && !l.split_once(':').is_some_and(|(k, _)| {
                            !k.is_empty()
                                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        })
                })
                .map(String::from)
        })
        .unwrap_or_else(|| "(no subject line)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_an_init_script_and_a_unit_with_nothing_left_to_fill() {
        let files = service_files();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc/init.d/redis-server",
                "lib/systemd/system/redis-server.service",
                "etc/init.d/redis-sentinel",
                "lib/systemd/system/redis-sentinel.service",
                "install.sh",
            ]
        );
        for f in &files {
            let text = String::from_utf8_lossy(&f.bytes);
            assert!(
                !text.contains("@NAME@") && !text.contains("@PREFIX@"),
                "{}",
                f.path
            );
            assert!(text.contains(DEFAULT_PREFIX), "{}", f.path);
        }
        let unit = String::from_utf8_lossy(&files[3].bytes);
        assert!(unit.contains(
            "ExecStart=/opt/portable-redis/bin/redis-sentinel /opt/portable-redis/etc/sentinel.conf"
        ));
        let script = String::from_utf8_lossy(&files[0].bytes);
        assert!(script.contains("# Provides:          redis-server\n"));
        assert!(script.contains("CONF=$PREFIX/etc/redis.conf\n"));
        assert!(files[0].executable && !files[1].executable && files[4].executable);
    }

    #[test]
    fn the_readme_is_filled_in_and_its_title_underlined_to_length() {
        let r = readme(&ReadmeFacts {
            redis: "8.0.6",
            runs_on: "x86_64 Linux, glibc 2.11 and later",
            openssl: "3.5.7",
            glibc: Some("2.11"),
            kernel: "2.6.32",
            hosts: Some(
                "SUSE Linux Enterprise 11 SP1 and 12, CentOS and RHEL 6 and 7, and every newer distribution",
            ),
        });
        let text = String::from_utf8(r.bytes).unwrap();
        let mut lines = text.lines();
        let title = lines.next().unwrap();
        assert_eq!(
            title,
            "portable-redis 8.0.6 for x86_64 Linux, glibc 2.11 and later"
        );
        assert_eq!(lines.next().unwrap().len(), title.len());
        assert!(!text.contains('@'), "{text}");
        assert!(text.contains("OpenSSL 3.5.7"));
        assert!(text.contains(
            "The programs\nneed nothing on the host but glibc 2.11 or later and Linux 2.6.32 or\n\
             later: SUSE Linux Enterprise 11 SP1 and 12, CentOS and RHEL 6 and 7, and\n\
             every newer distribution. RELEASE.md says what it was built from and how\n\
             it was checked.\n"
        ));
        let r = readme(&ReadmeFacts {
            redis: "8.0.6",
            runs_on: "x86_64 Linux, any distribution",
            openssl: "3.5.7",
            glibc: None,
            kernel: "2.6.32",
            hosts: None,
        });
        let text = String::from_utf8(r.bytes).unwrap();
        assert!(!text.contains("glibc") && !text.contains('@'), "{text}");
        assert!(text.contains("but Linux 2.6.32 or later: each is one static\nfile"));
        let first = text.split("\n\n").nth(1).unwrap_or("");
        assert!(first.ends_with("checked."), "{first}");
        assert!(first.lines().all(|l| l.chars().count() <= 74), "{first}");
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc");
        assert_eq!(wrap("a verylongword b", 4), "a\nverylongword\nb");
        assert_eq!(wrap("", 4), "");
    }

    #[test]
    fn a_subject_comes_from_subject_or_description() {
        assert_eq!(subject("Subject: Pin memcpy\n\n--- a/x\n"), "Pin memcpy");
        assert_eq!(
            subject("From: x\nDescription: Fix CVE-2025-1\nOrigin: upstream\n--- a/x\n"),
            "Fix CVE-2025-1"
        );
        assert_eq!(
            subject("From 1234 Mon\nSubject: [PATCH 2/3] Fix the parser\n\n---\n"),
            "Fix the parser"
        );
        assert_eq!(
            subject("Always retransmit\n\nBackport of it.\n\nCVE: CVE-2026-1\n--- a/x\n"),
            "Always retransmit"
        );
        assert_eq!(
            subject("CVE: CVE-2026-1\n--- a/x\n+++ b/x\n"),
            "(no subject line)"
        );
    }
}
