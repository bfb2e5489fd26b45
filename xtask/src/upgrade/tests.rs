use super::*;

fn tree_hash(s: char) -> treehash::TreeHash {
    format!("sha256:{}", s.to_string().repeat(64))
        .parse()
        .unwrap()
}

#[test]
fn retargets_names_and_addresses() {
    let subs = vec![("7.0.15".to_string(), "8.0.2".to_string())];
    assert_eq!(
        retarget(
            "https://download.example/releases/redis-7.0.15.tar.gz",
            &subs
        )
        .as_deref(),
        Some("https://download.example/releases/redis-8.0.2.tar.gz")
    );
    assert_eq!(retarget("redis-latest.tar.gz", &subs), None);
    // A crate version containing the upstream version goes first.
    let subs = vec![
        ("300.5.5+3.5.5".to_string(), "300.5.6+3.5.6".to_string()),
        ("3.5.5".to_string(), "3.5.6".to_string()),
    ];
    assert_eq!(
        retarget("openssl-src-300.5.5+3.5.5/openssl", &subs).as_deref(),
        Some("openssl-src-300.5.6+3.5.6/openssl")
    );
}

#[test]
fn reads_release_dates_from_the_tree() {
    let d = tempfile::tempdir().unwrap();
    fs::write(
            d.path().join("00-RELEASENOTES"),
            "Upgrade urgency: SECURITY\n\n================\nRedis 7.0.15 Released Tue 09 Jan 2024 10:45:52 IST\n================\nRedis 7.0.14 Released Thu 02 Nov 2023\n",
        )
        .unwrap();
    assert_eq!(
        release_date(Component::Redis, "7.0.15", d.path()).unwrap(),
        "2024-01-09"
    );
    assert_eq!(
        release_date(Component::Redis, "7.0.14", d.path()).unwrap(),
        "2023-11-02"
    );
    let err = format!(
        "{:#}",
        release_date(Component::Redis, "7.0.1", d.path()).unwrap_err()
    );
    assert!(err.contains("--released YYYY-MM-DD"), "{err}");
    fs::write(
        d.path().join("VERSION.dat"),
        "MAJOR=3\nRELEASE_DATE=\"27 Jan 2026\"\n",
    )
    .unwrap();
    assert_eq!(
        release_date(Component::Openssl, "3.5.5", d.path()).unwrap(),
        "2026-01-27"
    );
    assert_eq!(
        date_from_words(&["(May", "27", "2025)"]).as_deref(),
        Some("2025-05-27")
    );
    assert_eq!(date_from_words(&["(May", "2025)"]), None);
}

const PINS: &str = r#"# The pins.

[toolchain]
zig-version = "0.17.1"
wheel = "w.whl"
wheel-sha256 = "00"
cpu = "baseline"
opt = "-O2"

[[target]]
name = "x86_64-linux-glibc2.11"
zig = "x86_64-linux-gnu.2.11"
policy = "policy/x86_64-linux-gnu.2.11.toml"
openssl = "linux-x86_64"
jemalloc = "--with-lg-page=12"
runs-on = "x86_64 Linux, glibc 2.11 and later"

# OpenSSL from its crate.
[openssl]
name = "openssl"
version = "3.5.5"
released = "2026-01-27"
tree = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
archives = ["openssl-src-300.5.5+3.5.5.crate"]
root = "openssl-src-300.5.5+3.5.5/openssl"
urls = ["https://crates.example/openssl-src-300.5.5+3.5.5.crate"]
cargo-crate = "openssl-src@300.5.5+3.5.5"
license = "Apache-2.0"
licenses = ["LICENSE.txt"]

[[redis]]
name = "redis"
version = "7.0.15"
released = "2024-01-09"
tree = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
archives = ["redis-7.0.15.tar.gz", "redis_7.0.15.orig.tar.gz"]
urls = ["https://download.example/releases/redis-7.0.15.tar.gz"]
debian = { package = "redis", suites = ["bookworm", "bookworm-security"] }
patches = "patches/redis/7.0"
license = "BSD-3-Clause"
licenses = [
    "COPYING",   # the main licence
    "deps/linenoise/linenoise.c#header",
]

[[redis.bundled]]
name = "linenoise"
path = "deps/linenoise"
version = "unversioned"
license = "BSD-2-Clause"
"#;

fn lock(openssl_src: &str) -> String {
    format!(
            "version = 4\n\n[[package]]\nname = \"openssl-src\"\nversion = \"{openssl_src}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"ab\"\n"
        )
}

/// A repository with the pins above, a 7.0 series and a Cargo.lock.
fn repo() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("vendor")).unwrap();
    fs::write(d.path().join(PINS_FILE), PINS).unwrap();
    fs::write(d.path().join("Cargo.lock"), lock("300.5.5+3.5.5")).unwrap();
    let s = d.path().join("patches/redis/7.0");
    fs::create_dir_all(&s).unwrap();
    fs::write(s.join("series"), "# 7.0 series\n0001-a.patch\n").unwrap();
    fs::write(
        s.join("0001-a.patch"),
        "--- a/src/f.c\n+++ b/src/f.c\n@@ -1,3 +1,4 @@\n one\n two\n+two and a half\n three\n",
    )
    .unwrap();
    fs::write(s.join("notes.txt"), "not part of the series\n").unwrap();
    d
}

fn plan_notes_name_profile(r: &tempfile::TempDir, pins: &Pins) -> bool {
    let plan = Plan::new(r.path(), pins, Component::Redis, "7.0.16", &[]).unwrap();
    plan.notes.iter().any(|n| {
        n.starts_with("profiles/redis-7.0.15/ is redis-7.0.15's")
            && n.contains("`cargo xtask pgo --redis 7.0.16`")
    })
}

#[test]
fn plans_a_new_redis_line_from_the_previous_one() {
    let r = repo();
    let mut pins = Pins::parse(PINS).unwrap();
    pins.redis[0].make = vec!["OPTIMIZATION=-O2 -flto".into()];
    let plan = Plan::new(
        r.path(),
        &pins,
        Component::Redis,
        "8.0.2",
        &["trixie".into()],
    )
    .unwrap();
    assert_eq!(plan.slot, Slot::NewRedisLine);
    // The line's make variables stay with the line, and the plan says so.
    assert!(plan.candidate.make.is_empty());
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("`OPTIMIZATION=-O2 -flto`") && n.contains("not carried")),
        "{:?}",
        plan.notes
    );
    assert_eq!(plan.previous.version, "7.0.15");
    let c = &plan.candidate;
    assert_eq!(
        c.archives,
        ["redis-8.0.2.tar.gz", "redis_8.0.2.orig.tar.gz"]
    );
    assert_eq!(
        c.urls,
        ["https://download.example/releases/redis-8.0.2.tar.gz"]
    );
    assert_eq!(c.debian.as_ref().unwrap().suites, ["trixie"]);
    assert_eq!(c.patches.as_deref(), Some("patches/redis/8.0"));
    assert_eq!(
        plan.series,
        Some(SeriesPlan {
            dir: "patches/redis/8.0".into(),
            copy_from: Some("patches/redis/7.0".into())
        })
    );
    // The suites default to the previous pin's.
    let plan = Plan::new(r.path(), &pins, Component::Redis, "7.0.16", &[]).unwrap();
    assert_eq!(plan.slot, Slot::Redis(0));
    assert_eq!(plan.candidate.make, ["OPTIMIZATION=-O2 -flto"]);
    assert_eq!(
        plan.candidate.debian.unwrap().suites,
        ["bookworm", "bookworm-security"]
    );
    assert_eq!(
        plan.series.unwrap().copy_from,
        None,
        "same line, same series"
    );
    // A profile of the previous version is named, with how to train one.
    assert!(!plan_notes_name_profile(&r, &pins));
    fs::create_dir_all(r.path().join("profiles/redis-7.0.15")).unwrap();
    assert!(plan_notes_name_profile(&r, &pins));
    // Already pinned, or not a version: clear errors.
    let err = format!(
        "{:#}",
        Plan::new(r.path(), &pins, Component::Redis, "7.0.15", &[]).unwrap_err()
    );
    assert!(err.contains("already pinned"), "{err}");
    assert!(Plan::new(r.path(), &pins, Component::Redis, "eight", &[]).is_err());
}

#[test]
fn openssl_follows_the_crate_cargo_lock_resolves() {
    let r = repo();
    let pins = Pins::parse(PINS).unwrap();
    // Cargo.lock still resolves the old crate: the crate origin is dropped.
    let plan = Plan::new(r.path(), &pins, Component::Openssl, "3.5.6", &[]).unwrap();
    assert_eq!(plan.candidate.cargo_crate, None);
    assert!(plan.candidate.archives.is_empty(), "{:?}", plan.candidate);
    assert!(
        plan.notes.iter().any(|n| n.contains("xtask/Cargo.toml")),
        "{:?}",
        plan.notes
    );
    fs::write(r.path().join("Cargo.lock"), lock("300.5.6+3.5.6")).unwrap();
    let plan = Plan::new(r.path(), &pins, Component::Openssl, "3.5.6", &[]).unwrap();
    let c = &plan.candidate;
    assert_eq!(c.cargo_crate.as_deref(), Some("openssl-src@300.5.6+3.5.6"));
    assert_eq!(c.archives, ["openssl-src-300.5.6+3.5.6.crate"]);
    assert_eq!(c.root.as_deref(), Some("openssl-src-300.5.6+3.5.6/openssl"));
    assert_eq!(plan.slot, Slot::Openssl);
    assert_eq!(plan.series, None);
}

fn completed_plan(r: &Path, version: &str) -> (Plan, tempfile::TempDir) {
    let pins = Pins::parse(PINS).unwrap();
    let mut plan = Plan::new(r, &pins, Component::Redis, version, &["trixie".into()]).unwrap();
    let tree = tempfile::tempdir().unwrap();
    fs::create_dir_all(tree.path().join("deps/linenoise")).unwrap();
    fs::create_dir_all(tree.path().join("deps/fast_float")).unwrap();
    fs::write(
        tree.path().join("deps/linenoise/linenoise.c"),
        "/* BSD */\n",
    )
    .unwrap();
    fs::write(tree.path().join("deps/fast_float/LICENSE-MIT"), "MIT\n").unwrap();
    fs::write(tree.path().join("LICENSE.txt"), "tri\n").unwrap();
    fs::write(
        tree.path().join("00-RELEASENOTES"),
        format!("Redis {version} Released Tue 27 May 2025 10:00:00 IST\n"),
    )
    .unwrap();
    plan.complete(&tree_hash('3'), tree.path(), None).unwrap();
    (plan, tree)
}

#[test]
fn completes_date_and_licences_from_the_new_tree() {
    let r = repo();
    let (plan, _tree) = completed_plan(r.path(), "8.0.2");
    let c = &plan.candidate;
    assert_eq!(c.released, "2025-05-27");
    assert_eq!(c.tree, tree_hash('3'));
    assert_eq!(
        c.licenses,
        [
            "deps/linenoise/linenoise.c#header",
            "LICENSE.txt",
            "deps/fast_float/LICENSE-MIT"
        ]
    );
    assert!(plan.notes.iter().any(|n| n.contains("`COPYING` dropped")));
}

#[test]
fn writes_a_new_line_and_keeps_the_rest_of_the_file() {
    let r = repo();
    let (plan, _tree) = completed_plan(r.path(), "8.0.2");
    let out = render_pins(PINS, plan.slot, &plan.previous, &plan.candidate).unwrap();
    assert!(
        out.starts_with(PINS),
        "the old text is kept as it was:\n{out}"
    );
    let pins = Pins::parse(&out).unwrap();
    assert_eq!(pins.redis.len(), 2);
    assert_eq!(
        pins.redis[0].version, "7.0.15",
        "the default line stays first"
    );
    let new = pins.redis(Some("8.0")).unwrap();
    assert_eq!(new.tree, tree_hash('3'));
    assert_eq!(new.patches.as_deref(), Some("patches/redis/8.0"));
    assert!(
        out.contains("\n[[redis]]\nname = \"redis\"\nversion = \"8.0.2\""),
        "{out}"
    );
    assert!(out.contains("licenses = [\n    \"deps/linenoise"), "{out}");
}

#[test]
fn replaces_a_pin_in_place_keeping_comments_and_unchanged_layout() {
    let r = repo();
    let (plan, _tree) = completed_plan(r.path(), "7.0.16");
    assert_eq!(plan.slot, Slot::Redis(0));
    let out = render_pins(PINS, plan.slot, &plan.previous, &plan.candidate).unwrap();
    assert!(
        out.contains("# OpenSSL from its crate.\n[openssl]"),
        "{out}"
    );
    assert!(out.contains("version = \"7.0.16\""), "{out}");
    assert!(!out.contains("7.0.15"), "{out}");
    assert!(
        out.contains("patches = \"patches/redis/7.0\""),
        "unchanged keys keep their layout: {out}"
    );
    let pins = Pins::parse(&out).unwrap();
    assert_eq!(pins.redis.len(), 1);
    assert_eq!(pins.redis[0].released, "2025-05-27");
    assert_eq!(pins.openssl.version, "3.5.5");
}

#[test]
fn copies_the_listed_patches_and_notes_the_origin() {
    let r = repo();
    let to = tempfile::tempdir().unwrap();
    let series = copy_series(
        &r.path().join("patches/redis/7.0"),
        to.path(),
        "Started from patches/redis/7.0.",
    )
    .unwrap();
    assert_eq!(series.patches.len(), 1);
    assert_eq!(
        fs::read_to_string(to.path().join("series")).unwrap(),
        "# Started from patches/redis/7.0.\n# 7.0 series\n0001-a.patch\n"
    );
    assert_eq!(
        fs::read(to.path().join("0001-a.patch")).unwrap(),
        fs::read(r.path().join("patches/redis/7.0/0001-a.patch")).unwrap()
    );
    assert!(!to.path().join("notes.txt").exists(), "only the series");
}

/// A release archive of a crafted Redis tree, in a mirror folder.
fn mirror_with(version: &str, f_c: &str) -> tempfile::TempDir {
    let m = tempfile::tempdir().unwrap();
    let top = format!("redis-{version}");
    crate::archive::tests::Crafted::new()
        .file(&format!("{top}/src/f.c"), f_c, 0o644)
        .file(
            &format!("{top}/00-RELEASENOTES"),
            &format!("Redis {version} Released Tue 27 May 2025 12:00:00 IST\n"),
            0o644,
        )
        .file(&format!("{top}/COPYING"), "BSD\n", 0o644)
        .file(
            &format!("{top}/deps/linenoise/linenoise.c"),
            "/* BSD */\n",
            0o644,
        )
        .write(&m.path().join(format!("redis-{version}.tar.gz")));
    m
}

fn options(mirror: &Path, write: bool) -> UpgradeOptions {
    UpgradeOptions {
        component: Component::Redis,
        version: "8.0.2".into(),
        write,
        suites: vec!["trixie".into()],
        released: None,
        vendor: VendorOptions {
            mirror: Some(mirror.to_path_buf()),
            offline: true,
        },
    }
}

/// The crafted repository and an empty state folder.
fn checkout() -> (tempfile::TempDir, tempfile::TempDir, Project) {
    let r = repo();
    let state = tempfile::tempdir().unwrap();
    let project = Project::new(r.path().to_path_buf(), state.path().to_path_buf());
    (r, state, project)
}

#[test]
fn a_rehearsal_changes_nothing_and_write_publishes_pin_and_series() {
    let (r, _state, project) = checkout();
    let before = crate::treehash::tree_hash(r.path()).unwrap();
    // The new release moved the hunk down two lines: it applies with offset.
    let mirror = mirror_with("8.0.2", "zero\nzero\none\ntwo\nthree\n");
    let o = run(&project, &options(mirror.path(), false)).unwrap();
    let rehearsal = o.rehearsal.as_ref().unwrap();
    assert_eq!(rehearsal.reports[0].status(), "applies with offset");
    assert_eq!((o.failed(), o.outcome().code(), o.written), (0, 0, false));
    assert!(
        o.verdict().contains("nothing was written"),
        "{}",
        o.verdict()
    );
    assert!(
        o.verdict().ends_with("--suite trixie --write`"),
        "{}",
        o.verdict()
    );
    let shown = o.to_string();
    assert!(shown.contains("version = \"8.0.2\""), "{shown}");
    assert!(
        shown.contains("0001-a.patch: applies with offset"),
        "{shown}"
    );
    assert_eq!(
        crate::treehash::tree_hash(r.path()).unwrap(),
        before,
        "a rehearsal leaves the working tree as it was"
    );
    let scratch = project.scratch().join("upgrade-redis-8.0.2");
    assert_eq!(
        fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0),
        0,
        "no staged series left in the state folder"
    );

    let o = run(&project, &options(mirror.path(), true)).unwrap();
    assert!(o.written);
    let pins = Pins::load(r.path()).unwrap();
    let new = pins.redis(Some("8.0")).unwrap();
    assert_eq!(
        pins.redis[0].version, "7.0.15",
        "the default line stays first"
    );
    assert_eq!(new.released, "2025-05-27");
    // The pinned tree is what the vendor stage now accepts from the mirror.
    let again = vendor::vendor(
        &project,
        new,
        &VendorOptions {
            mirror: Some(mirror.path().to_path_buf()),
            offline: true,
        },
    )
    .unwrap();
    assert_eq!(
        crate::treehash::tree_hash(&again.dir).unwrap(),
        new.tree,
        "the written hash is the tree's"
    );
    let series = r.path().join("patches/redis/8.0");
    assert!(fs::read_to_string(series.join("series"))
        .unwrap()
        .starts_with("# Started from patches/redis/7.0 when redis 8.0.2 was pinned.\n"));
    assert!(series.join("0001-a.patch").is_file());
    assert!(
        Plan::new(r.path(), &pins, Component::Redis, "8.0.2", &[]).is_err(),
        "pinned now"
    );
}

#[test]
fn a_failed_rehearsal_leaves_no_trace() {
    let (r, _state, project) = checkout();
    let before = crate::treehash::tree_hash(r.path()).unwrap();
    // `two` was rewritten upstream: the hunk cannot apply.
    let mirror = mirror_with("8.0.2", "one\nTWO\nthree\n");
    let o = run(&project, &options(mirror.path(), false)).unwrap();
    assert_eq!((o.failed(), o.outcome().code()), (1, 1));
    let shown = o.to_string();
    assert!(shown.contains("src/f.c hunk #1 @@ -1,3 +1,4 @@"), "{shown}");
    assert!(
        shown.contains("| two") && shown.contains("| TWO"),
        "{shown}"
    );
    assert!(o.verdict().contains("1 patch(es) fail"), "{}", o.verdict());
    assert_eq!(crate::treehash::tree_hash(r.path()).unwrap(), before);
    assert!(!r.path().join("patches/redis/8.0").exists());
}
