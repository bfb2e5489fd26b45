use super::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

#[test]
fn versions_and_ranges() {
    assert!(v("7.0.15") < v("7.2.0"));
    assert!(v("3.5.10") > v("3.5.9"));
    assert!(v("1.1.1zj") > v("1.1.1"));
    assert_eq!(v("8.0"), v("8.0.0"));
    let r = Range::parse(">= 7.4.0, < 7.4.6").unwrap();
    assert!(r.contains(&v("7.4.5")) && !r.contains(&v("7.4.6")) && !r.contains(&v("7.2.9")));
    assert!(Range::parse("< 7.2.11").unwrap().contains(&v("7.0.15")));
    assert!(Range::parse("about 7").is_err());
    assert!(Version::parse("x.1").is_err());
}

const DATA: &str = r#"
[[advisory]]
id = "CVE-1"
component = "redis"
summary = "Lua overflow"
url = "https://example/1"
ratings = [{ source = "GitHub", severity = "high", score = 7.0 }, { source = "CISA-ADP", score = 9.8 }]
affected = ["< 7.2.11", ">= 8.0.0, < 8.0.4"]
patched = { "7.0.15" = ["CVE-1.patch"] }

[[advisory]]
id = "CVE-2"
component = "redis"
summary = "cluster bus"
url = "https://example/2"
affected = [">= 7.2.0, < 7.2.9"]

[[advisory]]
id = "CVE-3"
component = "openssl"
summary = "DTLS"
url = "https://example/3"
ratings = [{ source = "OpenSSL", severity = "moderate" }]
affected = [">= 3.5.0, < 3.5.9"]

[advisory.not-affected."*"]
justification = "code_not_present"
detail = "no DTLS"
build-option = "no-dtls"
absent-symbols = ["DTLS_method"]

[[advisory]]
id = "CVE-4"
component = "openssl"
summary = "open one"
url = "https://example/4"
ratings = [{ source = "OpenSSL", severity = "low" }]
affected = [">= 3.5.0, < 3.5.10"]
"#;

fn comp(name: &str, version: &str, patches: &[&str], opts: &[&str]) -> Component {
    Component {
        name: name.into(),
        version: version.into(),
        patches: patches.iter().map(|s| s.to_string()).collect(),
        patch_cves: BTreeMap::new(),
        build_options: opts.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn states_follow_from_versions_patches_and_statements() {
    let a = Advisories::parse(DATA).unwrap();
    let f = evaluate(
        &a,
        &[
            comp("redis", "7.0.15", &["CVE-1.patch"], &[]),
            comp("redis", "8.0.6", &[], &[]),
            comp("redis", "7.4.0", &[], &[]),
            comp("openssl", "3.5.7", &[], &["no-dtls"]),
        ],
    )
    .unwrap();
    let state = |id: &str, version: &str| {
        f.iter()
            .find(|x| x.id == id && x.version == version)
            .unwrap()
            .state
            .clone()
    };
    assert_eq!(
        state("CVE-1", "7.0.15"),
        State::Patched {
            patches: vec!["CVE-1.patch".into()]
        }
    );
    assert_eq!(
        state("CVE-1", "8.0.6"),
        State::FixedUpstream {
            fixed_in: "8.0.4".into()
        }
    );
    assert_eq!(
        state("CVE-1", "7.4.0"),
        State::FixedBefore {
            line: "7.4".into(),
            fixed_in: "7.2.11".into()
        }
    );
    assert!(matches!(
        state("CVE-2", "7.0.15"),
        State::NotAffectedVersion { .. }
    ));
    assert!(matches!(state("CVE-3", "3.5.7"), State::NotAffected(_)));
    assert_eq!(state("CVE-4", "3.5.7"), State::Open);
    // The highest rating decides; unrated is unknown and blocks.
    assert_eq!(a.advisories[0].severity(), Severity::Critical);
    assert_eq!(a.advisories[1].severity(), Severity::Unknown);
    assert_eq!(a.advisories[2].severity(), Severity::Medium);
    let open = f.iter().find(|x| x.id == "CVE-4").unwrap();
    assert!(!open.blocks(), "a low open finding does not block");
    assert_eq!(absent_symbols(&f), [("CVE-3", "DTLS_method")]);
}

#[test]
fn claims_the_build_contradicts_are_errors() {
    let a = Advisories::parse(DATA).unwrap();
    let err = format!(
        "{:#}",
        evaluate(&a, &[comp("redis", "7.0.15", &[], &[])]).unwrap_err()
    );
    assert!(
        err.contains("CVE-1 says redis 7.0.15 is fixed by CVE-1.patch"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        evaluate(&a, &[comp("openssl", "3.5.7", &[], &[])]).unwrap_err()
    );
    assert!(err.contains("built with `no-dtls`"), "{err}");
    let mut c = comp("redis", "7.0.15", &["CVE-1.patch", "x.patch"], &[]);
    c.patch_cves.insert("x.patch".into(), vec!["CVE-9".into()]);
    let err = format!("{:#}", evaluate(&a, &[c]).unwrap_err());
    assert!(err.contains("x.patch says it fixes CVE-9"), "{err}");
    let out_of_range = DATA.replace(
        r#""7.0.15" = ["CVE-1.patch"]"#,
        r#""7.4.0" = ["CVE-1.patch"]"#,
    );
    let a = Advisories::parse(&out_of_range).unwrap();
    let err = format!(
        "{:#}",
        evaluate(&a, &[comp("redis", "7.4.0", &["CVE-1.patch"], &[])]).unwrap_err()
    );
    assert!(err.contains("outside its affected versions"), "{err}");
}

#[test]
fn allowing_marks_open_findings_only() {
    let a = Advisories::parse(DATA).unwrap();
    let mut f = evaluate(&a, &[comp("redis", "8.0.6", &[], &[])]).unwrap();
    assert!(
        allow(&mut f, &["CVE-1".into()]).is_err(),
        "CVE-1 is fixed in 8.0.6"
    );
    let mut f2 = evaluate(&a, &[comp("openssl", "3.5.7", &[], &["no-dtls"])]).unwrap();
    allow(&mut f2, &["CVE-4".into()]).unwrap();
    assert!(f2.iter().any(|x| x.id == "CVE-4" && x.allowed));
    f.clear();
}

#[test]
fn the_repository_advisories_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let a = Advisories::load(root).unwrap();
    assert!(a.advisories.iter().any(|x| x.component == "openssl"));
    assert!(a.advisories.iter().any(|x| x.component == "redis"));
}
