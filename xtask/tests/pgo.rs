//! `cargo xtask pgo` on real sources: Redis 7.0 built instrumented, trained
//! under redis-benchmark over TCP and TLS, merged by `llvm-profdata` into a
//! profile whose counters show the request path ran. (That a build reads
//! the line's profile, e2e.rs and redis80.rs check on the committed ones.)
//! Budget 900 s: the instrumented Redis build (OpenSSL comes from the
//! cache) and a short training, about 2 minutes cold.

mod common;

use std::{fs, process::Command};

use common::{copy_checkout, repo_root, scratch};

const PROFILE: &str = "profiles/redis-7.0.15/x86_64-linux-glibc2.11.profdata";

#[test]
fn a_training_run_writes_a_profile_of_the_request_path() {
    // A copy of the checkout without its profile: the repository's stays as
    // committed, and what the copy holds afterwards is the training's.
    let root = scratch("pgo");
    let checkout = root.join("checkout");
    copy_checkout(&repo_root(), &checkout);
    let _ = fs::remove_file(checkout.join(PROFILE));
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(&checkout)
        .arg("--state")
        .arg(common::state())
        .args(["pgo", "--redis", "7.0", "--requests", "2000"])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && said.contains("is missing: the training run needs LLVM") {
        common::skip("pgo_training", said.trim());
        return;
    }
    assert!(out.status.success(), "xtask pgo:\n{said}");
    assert!(said.contains(&format!("pgo: wrote {PROFILE}")), "{said}");
    assert!(said.contains("over TLS"), "{said}");
    // The llvm-profdata the xtask found for zig's LLVM version.
    let profdata = said
        .lines()
        .find_map(|l| l.trim_end_matches(')').rsplit_once(" raw profiles by "))
        .map(|(_, tool)| tool.to_string())
        .unwrap_or_else(|| panic!("no llvm-profdata named:\n{said}"));

    // The counters: every command went through processCommand, and the TLS
    // connections through Redis's TLS layer.
    let profile = checkout.join(PROFILE);
    for function in ["processCommand", "connTLSRead"] {
        let out = Command::new(&profdata)
            .args(["show", "--counts", &format!("--function={function}")])
            .arg(&profile)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let count: u64 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Function count: "))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or_else(|| panic!("{function} is not in the profile:\n{text}"));
        assert!(count >= 1000, "{function} ran {count} times:\n{text}");
    }
}
