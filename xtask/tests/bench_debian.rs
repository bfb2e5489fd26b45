//! The bench's comparison base: Debian's own build of each Redis line, from
//! the suites of the line's pin, unpacked into a root of its own and started
//! through that root's loader. It reports the pin's version, answers PING,
//! maps no library from outside its root, and a root that lacks a library
//! is refused with the library named.

mod common;

use std::{fs, time::Duration};

use common::scratch;
use xtask::{
    bench::debian,
    project::Project,
    server::{self, free_port, Server},
};

#[test]
fn debians_server_of_each_line_runs_from_its_own_root() {
    let project = Project::discover(None).unwrap();
    let pins = project.pins().unwrap();
    let dir = scratch("bench-debian");
    for line in ["7.0", "8.0"] {
        let pin = pins.redis(Some(line)).unwrap();
        let d = debian::server(&project, pin, &dir).unwrap();
        assert!(
            d.version.contains(&format!("v={} ", pin.version)),
            "{}",
            d.version
        );
        let root = &d.root;

        let port = free_port().unwrap();
        let mut cmd = d.runner.command(&d.binary);
        cmd.stderr(std::process::Stdio::null());
        let mut s = Server::spawn_command(
            cmd,
            &dir.join(format!("run-{line}")),
            port,
            &server::loopback_args(port, &[]),
        )
        .unwrap();
        s.wait_ready(Duration::from_secs(20)).unwrap();
        let info = server::command(port, &["INFO", "server"], Duration::from_secs(5)).unwrap();
        assert_eq!(
            server::info_field(&info, "redis_version"),
            Some(pin.version.as_str())
        );
        let maps = fs::read_to_string(format!("/proc/{}/maps", s.child.id())).unwrap();
        let libraries: Vec<&str> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|p| p.contains(".so"))
            .collect();
        assert!(
            libraries.iter().any(|p| p.contains("libjemalloc.so")),
            "{libraries:?}"
        );
        for p in &libraries {
            assert!(
                fs::canonicalize(p).unwrap().starts_with(root),
                "{line}: {p} is not from {}",
                root.display()
            );
        }
        s.kill().unwrap();
    }

    // A root without one of the server's libraries is refused, naming it
    // (whether or not the host has it: the host's folders lend nothing).
    let pin = pins.redis(Some("7.0")).unwrap();
    let root = debian::server(&project, pin, &dir).unwrap().root;
    let mut removed = 0;
    for lib in ["usr/lib", "lib"] {
        let libs = root
            .join(lib)
            .join(format!("{}-linux-gnu", std::env::consts::ARCH));
        for e in fs::read_dir(&libs).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("liblzf.so")
            {
                fs::remove_file(&p).unwrap();
                removed += 1;
            }
        }
    }
    assert!(removed > 0, "no liblzf in {}", root.display());
    let err = match debian::server(&project, pin, &dir) {
        Ok(_) => panic!("a root without liblzf was taken"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("liblzf.so.1") && err.contains("lacks"),
        "{err}"
    );
}
