use super::*;

const DEB822: &str = "Types: deb\n# http://snapshot/archive\nURIs: http://archive.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: https://third.example/node\nSuites: nodistro\nComponents: main\n";

#[test]
fn parses_both_source_formats() {
    let e = parse_deb822(DEB822);
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].suites, ["bookworm", "bookworm-updates"]);
    let l = parse_one_line(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://a.example/ubuntu jammy main universe\ndeb-src http://x y z\n",
    );
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].signed_by.as_deref(), Some("/k.gpg"));
    assert_eq!(l[0].components, ["main", "universe"]);
}

#[test]
fn derives_deb_src_by_suite_suffix() {
    let host = parse_deb822(DEB822);
    let text = derive_deb_src(
        &host,
        "bookworm",
        &["trixie".into(), "trixie-security".into()],
    )
    .unwrap();
    assert!(
        text.contains("URIs: http://archive.example/debian\nSuites: trixie\n"),
        "{text}"
    );
    assert!(
        text.contains("URIs: http://security.example/debian-security\nSuites: trixie-security\n")
    );
    assert!(
        !text.contains("third.example"),
        "third-party repositories are not Debian's"
    );
    assert!(text.contains("Types: deb-src"));
    assert!(derive_deb_src(&host, "jammy", &["noble".into()]).is_err());
}

#[test]
fn derives_deb_for_another_architecture() {
    let host = parse_deb822(DEB822);
    let suites = ["bookworm".to_string(), "bookworm-updates".into()];
    let text = derive_deb(&host, "bookworm", &suites, "arm64").unwrap();
    assert!(
        text.starts_with(
            "Types: deb\nArchitectures: arm64\nURIs: http://archive.example/debian\nSuites: bookworm\n"
        ),
        "{text}"
    );
    assert!(!text.contains("deb-src"), "{text}");
}

#[test]
fn versions_and_print_uris() {
    assert_eq!(upstream_version("5:7.0.15-1~deb12u10"), "7.0.15");
    assert_eq!(upstream_version("3.5.9-1~deb13u1"), "3.5.9");
    assert_eq!(upstream_version("1.0"), "1.0");
    let showsrc = "Package: redis\nVersion: 5:7.0.15-1~deb12u7\n\nPackage: redis\nVersion: 5:8.0.2-3\n\nPackage: other\nVersion: 1\n";
    assert_eq!(
        showsrc_versions(showsrc, "redis"),
        ["5:7.0.15-1~deb12u7", "5:8.0.2-3"]
    );
    let uris = "'http://a.example/pool/redis_7.0.15.orig.tar.gz' redis_7.0.15.orig.tar.gz 3025940 SHA256:4B1D\n'http://a.example/pool/x.dsc' x.dsc 10 SHA256:00\n";
    let f = parse_print_uris(uris);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].name, "redis_7.0.15.orig.tar.gz");
    assert_eq!(f[0].sha256, "4b1d");
    // `apt-get download --print-uris` prints the same form; a line with
    // another hash is not taken.
    let uris = "'http://a.example/pool/main/g/glibc/libc6_2.36-9_arm64.deb' libc6_2.36-9_arm64.deb 2318744 SHA256:ab12\n'http://a.example/x.deb' x.deb 1 SHA512:cd\n";
    let f = parse_print_uris(uris);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].name, "libc6_2.36-9_arm64.deb");
    assert_eq!(f[0].sha256, "ab12");
}

#[test]
fn debian_version_order() {
    use std::cmp::Ordering::*;
    for (a, b, want) in [
        ("5:7.0.15-1~deb12u10", "5:7.0.15-1~deb12u9", Greater),
        ("5:7.0.15-1~deb12u10", "5:7.0.15-1", Less),
        ("5:8.0.2-3+deb13u3", "5:8.0.2-3", Greater),
        ("5:8.0.6-3", "5:8.0.2-3+deb13u3", Greater),
        ("1:1.0", "2.0", Greater),
        ("1.0~rc1", "1.0", Less),
        ("1.0a", "1.0", Greater),
        ("1.0-1", "1.0-1", Equal),
        ("3.5.10-1", "3.5.9-1", Greater),
        ("1.0.", "1.0a", Greater),
    ] {
        assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
    }
}

#[test]
fn codename_from_os_release() {
    assert_eq!(
        host_codename("NAME=x\nVERSION_CODENAME=bookworm\n").as_deref(),
        Some("bookworm")
    );
    assert_eq!(host_codename("NAME=x\n"), None);
}
