//! The release as a sysadmin installs it: the 7.0 tarball unpacked into a
//! bubblewrap root laid out like an old host (its own /etc with a minimal
//! passwd and group, /etc/init.d, /var, /opt; the machine's /usr read-only
//! for sh, coreutils, useradd and runuser; stand-ins for chkconfig, insserv
//! and systemctl that record their calls), `install.sh` run in it, the
//! installed service started, PINGed and stopped, `install.sh` run again,
//! and `--uninstall`. Each root has a private network, so port 6379 is its
//! own.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{release, scratch, skip};

const LINE: &str = "7.0";
const PREFIX: &str = "/opt/portable-redis";

/// bwrap as root (the install creates a user and chowns): or why not.
fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("install.sh needs root (useradd, chown)".into());
    }
    match Command::new("bwrap").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("bwrap is not installed (ci/install-deps.sh)".into()),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Init {
    Sysv,
    Systemd,
}

/// An old host's root, in a folder below target/e2e.
struct Host {
    root: PathBuf,
    /// The unpacked release, as the host sees it.
    release: String,
    /// The shell install.sh and the init scripts run with: the machine's
    /// /bin/sh (dash, strictly POSIX), or bash in POSIX mode as SUSE 11's
    /// and CentOS 6's /bin/sh.
    shell: &'static str,
}

const STANDIN: &str = r#"#!/bin/sh
# A stand-in that records its calls; `systemctl is-enabled` answers from
# what `enable` and `disable` recorded.
echo "$(basename "$0") $*" >>/var/log/standins.log
mkdir -p /var/lib/standins
case "$(basename "$0") $1" in
    "systemctl enable") touch "/var/lib/standins/$2" ;;
    "systemctl disable") rm -f "/var/lib/standins/$2" ;;
    "systemctl is-enabled") [ -e "/var/lib/standins/$2" ]; exit ;;
esac
exit 0
"#;

/// PAM as an old host has it for root switching users: pam_rootok, no
/// session modules (the machine's own need a login session).
const PAM: &str = "auth sufficient pam_rootok.so\nauth required pam_deny.so\n\
account required pam_permit.so\npassword required pam_deny.so\n\
session required pam_permit.so\n";

impl Host {
    fn new(name: &str, init: Init, shell: &'static str) -> Host {
        let root = scratch(name);
        for d in [
            "etc/init.d",
            "etc/pam.d",
            "var/lib",
            "var/log",
            "var/run",
            "var/tmp",
            "tmp",
            "opt",
            "standins",
            "usr",
            "proc",
            "dev",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for (link, target) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            std::os::unix::fs::symlink(target, root.join(link)).unwrap();
        }
        if init == Init::Systemd {
            fs::create_dir_all(root.join("run/systemd/system")).unwrap();
            fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
        }
        let etc = root.join("etc");
        fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(etc.join("group"), "root:x:0:\n").unwrap();
        fs::write(etc.join("shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        fs::write(etc.join("gshadow"), "root:*::\n").unwrap();
        for p in ["other", "su", "runuser"] {
            fs::write(etc.join("pam.d").join(p), PAM).unwrap();
        }
        for s in ["chkconfig", "insserv", "systemctl"] {
            let p = root.join("standins").join(s);
            fs::write(&p, STANDIN).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let r = release(LINE);
        let status = Command::new("tar")
            .arg("xzf")
            .arg(&r.tarball)
            .arg("-C")
            .arg(root.join("tmp"))
            .status()
            .unwrap();
        assert!(status.success());
        let name = r.root.file_name().unwrap().to_string_lossy().into_owned();
        Host {
            root,
            release: format!("/tmp/{name}"),
            shell,
        }
    }

    /// `sh -c script` as root inside the host: stdout and stderr together.
    fn sh(&self, script: &str) -> (bool, String) {
        let out: Output = Command::new("bwrap")
            .env_clear()
            .arg("--bind")
            .arg(&self.root)
            .arg("/")
            .args(["--ro-bind", "/usr", "/usr"])
            .args(["--proc", "/proc", "--dev", "/dev"])
            .args(["--unshare-net", "--unshare-pid", "--unshare-ipc"])
            .args(["--die-with-parent", "--chdir", "/"])
            .args(["--setenv", "PATH", "/standins:/usr/sbin:/usr/bin"])
            .args(["--setenv", "LC_ALL", "C"])
            .args(["/bin/sh", "-c", script])
            .output()
            .expect("running bwrap");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn install(&self, args: &str) -> String {
        self.install_from(&self.release, args)
    }

    /// `install.sh` of the release unpacked at `release` (in the host).
    fn install_from(&self, release: &str, args: &str) -> String {
        let (ok, out) = self.sh(&format!("{} {release}/install.sh {args}", self.shell));
        assert!(ok, "{release}/install.sh {args} failed:\n{out}");
        out
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn read(&self, p: &str) -> String {
        fs::read_to_string(self.path(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn calls(&self) -> String {
        fs::read_to_string(self.path("/var/log/standins.log")).unwrap_or_default()
    }

    /// The uid the install gave `name` in the host's /etc/passwd.
    fn uid(&self, name: &str) -> u32 {
        self.read("/etc/passwd")
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f[0] == name).then(|| f[2].parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no user {name} in /etc/passwd"))
    }

    /// Every file, link and folder below the host's /etc, /opt and /var/lib
    /// with its mode, owner and content (or target): what an install may
    /// change.
    fn snapshot(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for top in ["etc", "opt", "srv", "var/lib", "var/run"] {
            if self.root.join(top).is_dir() {
                walk(&self.root, &self.root.join(top), &mut out);
            }
        }
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("-> {}", fs::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            walk(root, &p, out);
            "dir".into()
        } else {
            format!("{:x}", md5ish(&fs::read(&p).unwrap()))
        };
        out.insert(
            p.strip_prefix(root).unwrap().display().to_string(),
            format!("{:o} {}:{} {what}", m.mode() & 0o7777, m.uid(), m.gid()),
        );
    }
}

/// A content fingerprint (FNV-1a, 64 bits): enough to see a change.
fn md5ish(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Shell: wait up to 20 s until the server at the default port answers
/// (`redis-cli ping` prints PONG), for a start that returns before it
/// listens.
const WAIT_PONG: &str = "for i in $(seq 40); do \
     /srv/redis/bin/redis-cli ping 2>/dev/null && break; sleep 0.5; done;";

fn wait_pong(prefix: &str) -> String {
    WAIT_PONG.replace("/srv/redis", prefix)
}

#[test]
fn sysv_host_install_start_ping_stop_reinstall_and_uninstall() {
    sysv_host(
        "sysv_host_install_start_ping_stop_reinstall_and_uninstall",
        "/bin/sh",
    );
}

#[test]
fn the_same_under_bash_as_old_hosts_have_it_for_bin_sh() {
    sysv_host(
        "the_same_under_bash_as_old_hosts_have_it_for_bin_sh",
        "bash --posix",
    );
}

fn sysv_host(test: &str, shell: &'static str) {
    if let Some(why) = unavailable() {
        return skip(test, &why);
    }
    let name = format!("install-sysv-{}", shell.replace([' ', '/', '-'], ""));
    let host = Host::new(&name, Init::Sysv, shell);
    let init = format!("{shell} /etc/init.d/redis-server");

    // First install: user, folders, files, the init script registered.
    let out = host.install("");
    assert!(out.contains("created the user redis"), "{out}");
    let redis = host.uid("redis");
    assert!(redis > 0);
    assert!(host.read("/etc/group").contains("\nredis:x:"));
    assert_eq!(host.calls(), "chkconfig --add redis-server\n", "{out}");
    let script = host.read("/etc/init.d/redis-server");
    assert!(script.contains(&format!("PREFIX={PREFIX}\n")));
    assert!(host.path("/etc/init.d/redis-sentinel").is_file());
    assert!(!host
        .path("/etc/systemd/system/redis-server.service")
        .exists());
    for (dir, mode) in [
        ("/var/lib/portable-redis", 0o750),
        ("/var/log/portable-redis", 0o750),
        ("/var/run/portable-redis", 0o755),
        ("/opt/portable-redis/etc", 0o750),
    ] {
        let m = fs::metadata(host.path(dir)).unwrap();
        assert_eq!((m.mode() & 0o777, m.uid()), (mode, redis), "{dir}");
    }
    let conf = host.read("/opt/portable-redis/etc/redis.conf");
    assert!(conf.contains("\ndir /var/lib/portable-redis\n"));
    assert!(conf.contains("\nlogfile /var/log/portable-redis/redis-server.log\n"));
    assert_eq!(
        fs::read_link(host.path("/opt/portable-redis/bin/redis-sentinel")).unwrap(),
        Path::new("redis-server")
    );

    // The installed service: start, PING, a key, status, stop.
    let (ok, out) = host.sh(&format!(
        "{init} start && {} \
         /opt/portable-redis/bin/redis-cli set installed yes && \
         {init} status && \
         {init} stop; \
         {init} status; echo \"status=$?\"",
        wait_pong(PREFIX)
    ));
    assert!(ok, "{out}");
    assert!(out.contains("started (pid"), "{out}");
    assert!(out.contains("\nPONG\n"), "{out}");
    assert!(out.contains("redis-server is running"), "{out}");
    assert!(out.contains("stopped\n"), "{out}");
    assert!(out.ends_with("status=3\n"), "{out}");
    // It ran as redis, saved on stop into the data folder, logged there.
    let dump = fs::metadata(host.path("/var/lib/portable-redis/dump.rdb"))
        .unwrap_or_else(|e| panic!("no dump.rdb after stop ({e}):\n{out}"));
    assert_eq!((dump.uid(), dump.mode() & 0o077), (redis, 0));
    let log = host.read("/var/log/portable-redis/redis-server.log");
    assert!(log.contains("Ready to accept connections"), "{log}");
    assert!(!host
        .path("/var/run/portable-redis/redis-server.pid")
        .exists());

    // Again, with an edited configuration: nothing changes.
    let conf_path = host.path("/opt/portable-redis/etc/redis.conf");
    let edited = format!("{conf}maxmemory 64mb\n");
    fs::write(&conf_path, &edited).unwrap();
    let before = (host.snapshot(), host.calls());
    let out = host.install("");
    assert!(out.contains("nothing changed"), "{out}");
    assert!(
        out.contains("kept /opt/portable-redis/etc/redis.conf (edited here)"),
        "{out}"
    );
    assert_eq!((host.snapshot(), host.calls()), before, "{out}");

    // A release whose redis.conf differs: the edit stays, the new one goes
    // beside it; the unedited sentinel.conf is updated.
    let shipped = host.path(&format!("{}/etc/redis.conf", host.release));
    let newer = format!("{conf}# a newer release\n");
    fs::write(&shipped, &newer).unwrap();
    let shipped_sentinel = host.path(&format!("{}/etc/sentinel.conf", host.release));
    let mut sentinel = fs::read_to_string(&shipped_sentinel).unwrap();
    sentinel.push_str("# a newer release\n");
    fs::write(&shipped_sentinel, &sentinel).unwrap();
    let out = host.install("");
    assert!(out.contains("redis.conf.new"), "{out}");
    assert_eq!(fs::read_to_string(&conf_path).unwrap(), edited);
    assert_eq!(host.read("/opt/portable-redis/etc/redis.conf.new"), newer);
    assert_eq!(host.read("/opt/portable-redis/etc/sentinel.conf"), sentinel);
    assert!(
        out.contains("updated /opt/portable-redis/etc/sentinel.conf"),
        "{out}"
    );

    // Uninstall: programs and scripts go, data, logs, user and the edit stay.
    let (ok, out) = host.sh(&format!("{shell} {PREFIX}/install.sh --uninstall"));
    assert!(ok, "{out}");
    assert!(!host.path("/opt/portable-redis/bin").exists(), "{out}");
    assert!(!host.path("/etc/init.d/redis-server").exists());
    assert!(host.calls().contains("chkconfig --del redis-server\n"));
    assert!(host.path("/var/lib/portable-redis/dump.rdb").is_file());
    assert!(host
        .path("/var/log/portable-redis/redis-server.log")
        .is_file());
    assert_eq!(fs::read_to_string(&conf_path).unwrap(), edited);
    assert!(!host.path("/opt/portable-redis/etc/sentinel.conf").exists());
    assert_eq!(host.uid("redis"), redis);
    assert!(
        out.contains("kept the data in /var/lib/portable-redis"),
        "{out}"
    );
}

#[test]
fn systemd_host_gets_enabled_units_for_its_prefix_and_their_command_serves() {
    if let Some(why) = unavailable() {
        return skip(
            "systemd_host_gets_enabled_units_for_its_prefix_and_their_command_serves",
            &why,
        );
    }
    let host = Host::new("install-systemd", Init::Systemd, "/bin/sh");
    let out = host.install("--prefix /srv/redis");
    assert_eq!(
        host.calls(),
        "systemctl daemon-reload\nsystemctl enable redis-server.service\n",
        "{out}"
    );
    assert!(!host.path("/etc/init.d/redis-server").exists());
    assert!(
        out.contains("start the server: systemctl start redis-server"),
        "{out}"
    );
    let unit = host.read("/etc/systemd/system/redis-server.service");
    assert!(!unit.contains("/opt/portable-redis"), "{unit}");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart in the unit");
    assert!(
        exec.starts_with("/srv/redis/bin/redis-server /srv/redis/etc/redis.conf "),
        "{exec}"
    );
    assert!(unit.contains("\nUser=redis\n") && unit.contains("\nType=simple\n"));
    let sentinel = host.read("/etc/systemd/system/redis-sentinel.service");
    assert!(
        sentinel.contains("ExecStart=/srv/redis/bin/redis-sentinel /srv/redis/etc/sentinel.conf")
    );

    // The unit's command, as its user, in the foreground as systemd runs it.
    let (ok, out) = host.sh(&format!(
        "timeout 60 runuser -s /bin/sh redis -c '{}' & server=$!; \
         {WAIT_PONG} \
         /srv/redis/bin/redis-cli shutdown; wait $server; echo \"server exit=$?\"",
        exec.replace('\'', "'\\''")
    ));
    assert!(ok && out.contains("PONG\n"), "{out}");
    assert!(out.ends_with("server exit=0\n"), "{out}");
    assert!(
        host.path("/var/lib/portable-redis/dump.rdb").is_file(),
        "{out}"
    );
    assert!(
        !host
            .path("/var/run/portable-redis/redis-server.pid")
            .exists(),
        "the unit runs without a pid file:\n{out}"
    );

    // Again: nothing changes, systemd is not asked anything.
    let before = (host.snapshot(), host.calls());
    let out = host.install("--prefix /srv/redis");
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!((host.snapshot(), host.calls()), before, "{out}");

    // The installed copy knows its prefix.
    let (ok, out) = host.sh("/srv/redis/install.sh --uninstall");
    assert!(ok, "{out}");
    assert!(!host
        .path("/etc/systemd/system/redis-server.service")
        .exists());
    assert!(host
        .calls()
        .ends_with("systemctl disable redis-sentinel.service\nsystemctl daemon-reload\n"));
    assert!(!host.path("/srv/redis").exists(), "{out}");
    assert!(host.path("/var/lib/portable-redis/dump.rdb").is_file());
}

#[test]
fn install_sh_refuses_what_it_cannot_do_and_says_why() {
    if let Some(why) = unavailable() {
        return skip("install_sh_refuses_what_it_cannot_do_and_says_why", &why);
    }
    let host = Host::new("install-refusals", Init::Sysv, "/bin/sh");
    for (args, says) in [
        ("--prefix relative/dir", "--prefix must be an absolute path"),
        (
            "--prefix '/opt/my redis'",
            "characters the service files cannot quote",
        ),
        ("--init upstart", "--init must be systemd, sysv or none"),
        ("--frobnicate", "unknown argument '--frobnicate'"),
        ("--uninstall", "nothing to remove"),
    ] {
        let (ok, out) = host.sh(&format!("{}/install.sh {args}", host.release));
        assert!(!ok, "install.sh {args} succeeded:\n{out}");
        assert!(out.contains(says), "install.sh {args}:\n{out}");
    }
    assert!(!host.path("/opt/portable-redis").exists());
    assert_eq!(host.calls(), "");

    // A prefix that holds other things; another package's init script.
    fs::create_dir_all(host.path("/usr-local")).unwrap();
    fs::write(host.path("/usr-local/notes"), "mine\n").unwrap();
    let (ok, out) = host.sh(&format!("{}/install.sh --prefix /usr-local", host.release));
    assert!(
        !ok && out.contains("holds files but no portable-redis install"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(host.path("/usr-local/notes")).unwrap(),
        "mine\n"
    );
    fs::write(
        host.path("/etc/init.d/redis-server"),
        "#!/bin/sh\n# EPEL's\n",
    )
    .unwrap();
    let (ok, out) = host.sh(&format!("{}/install.sh", host.release));
    assert!(
        !ok && out.contains("/etc/init.d/redis-server exists and was not installed"),
        "{out}"
    );
    assert_eq!(
        host.read("/etc/init.d/redis-server"),
        "#!/bin/sh\n# EPEL's\n"
    );
    assert!(!host.path("/opt/portable-redis").exists(), "{out}");
    fs::remove_file(host.path("/etc/init.d/redis-server")).unwrap();

    // Installed once: a second prefix would take the first one's services;
    // the installed copy does not install over itself.
    host.install("");
    let (ok, out) = host.sh(&format!("{}/install.sh --prefix /opt/second", host.release));
    assert!(
        !ok && out.contains("was not installed into /opt/second"),
        "{out}"
    );
    let (ok, out) = host.sh("/opt/portable-redis/install.sh");
    assert!(!ok && out.contains("this is the installed copy"), "{out}");
    let (ok, out) = host.sh(&format!("{}/install.sh --init systemd", host.release));
    assert!(
        !ok && out.contains("was installed for init 'sysv'"),
        "{out}"
    );
    assert_eq!(host.calls(), "chkconfig --add redis-server\n");
}

#[test]
fn a_host_with_insserv_and_no_chkconfig_registers_with_insserv() {
    if let Some(why) = unavailable() {
        return skip(
            "a_host_with_insserv_and_no_chkconfig_registers_with_insserv",
            &why,
        );
    }
    let host = Host::new("install-insserv", Init::Sysv, "/bin/sh");
    fs::remove_file(host.path("/standins/chkconfig")).unwrap();
    host.install("");
    assert_eq!(host.calls(), "insserv redis-server\n");
    let (ok, out) = host.sh("/opt/portable-redis/install.sh --uninstall");
    assert!(ok, "{out}");
    assert!(
        host.calls().ends_with("insserv -r redis-sentinel\n"),
        "{}",
        host.calls()
    );
}

#[test]
fn install_sh_and_the_init_scripts_are_posix_sh_by_shellcheck() {
    if Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip(
            "install_sh_and_the_init_scripts_are_posix_sh_by_shellcheck",
            "shellcheck is not installed (ci/install-deps.sh)",
        );
    }
    let r = release(LINE);
    let out = Command::new("shellcheck")
        .args(["--shell=sh", "--severity=info"])
        .args(
            [
                "install.sh",
                "etc/init.d/redis-server",
                "etc/init.d/redis-sentinel",
            ]
            .map(|f| r.root.join(f)),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck --shell=sh:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn an_upgrade_to_8_0_replaces_the_programs_and_updates_an_unedited_config() {
    let test = "an_upgrade_to_8_0_replaces_the_programs_and_updates_an_unedited_config";
    if let Some(why) = unavailable() {
        return skip(test, &why);
    }
    let host = Host::new("install-upgrade", Init::Sysv, "/bin/sh");
    host.install("");
    let (ok, out) = host.sh("/etc/init.d/redis-server start && \
         /opt/portable-redis/bin/redis-cli set kept-across yes && \
         /etc/init.d/redis-server stop");
    assert!(ok, "{out}");

    // The 8.0 release, unpacked beside the 7.0 one, installed over it.
    let r8 = release("8.0");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&r8.tarball)
        .arg("-C")
        .arg(host.path("/tmp"))
        .status()
        .unwrap();
    assert!(status.success());
    let name = r8.root.file_name().unwrap().to_string_lossy().into_owned();
    let out = host.install_from(&format!("/tmp/{name}"), "");
    assert!(
        out.contains("updated /opt/portable-redis/etc/redis.conf (it was not edited here)"),
        "{out}"
    );
    assert_eq!(
        host.read("/opt/portable-redis/etc/redis.conf"),
        fs::read_to_string(r8.root.join("etc/redis.conf")).unwrap()
    );
    // 7.0's files are gone, folders included; the service stays registered once.
    assert!(
        !host
            .path("/opt/portable-redis/LICENSES/redis-7.0.15")
            .exists(),
        "{out}"
    );
    assert!(host
        .path("/opt/portable-redis/LICENSES/redis-8.0.6/LICENSE.txt")
        .is_file());
    assert_eq!(host.calls(), "chkconfig --add redis-server\n", "{out}");
    // The manifest is the release's files (the SysV scripts live in
    // /etc/init.d alone).
    assert_eq!(
        host.read("/opt/portable-redis/share/portable-redis/manifest"),
        host.sh(&format!(
            "cd /tmp/{name} && find . -type f -o -type l | sed 's|^./||' | grep -v '^etc/init.d/' | LC_ALL=C sort"
        ))
        .1
    );

    // The same service, now Redis 8.0, with the data 7.0 saved.
    let (ok, out) = host.sh(&format!(
        "/etc/init.d/redis-server start && {} \
         /opt/portable-redis/bin/redis-cli info server | grep '^redis_version:' && \
         /opt/portable-redis/bin/redis-cli get kept-across && \
         /etc/init.d/redis-server stop",
        wait_pong(PREFIX)
    ));
    assert!(ok, "{out}");
    assert!(out.contains("redis_version:8.0.6"), "{out}");
    assert!(out.contains("\nyes\n"), "{out}");
}

#[test]
fn links_the_redis_user_plants_in_etc_are_replaced_never_followed() {
    let test = "links_the_redis_user_plants_in_etc_are_replaced_never_followed";
    if let Some(why) = unavailable() {
        return skip(test, &why);
    }
    let host = Host::new("install-links", Init::Sysv, "/bin/sh");
    host.install("");
    // What the redis user could do in its own etc/: a link where the
    // unedited sentinel.conf was, and one where redis.conf.new will go.
    fs::write(host.path("/etc/important"), "root's\n").unwrap();
    fs::set_permissions(
        host.path("/etc/important"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let etc = host.path("/opt/portable-redis/etc");
    fs::remove_file(etc.join("sentinel.conf")).unwrap();
    std::os::unix::fs::symlink("/etc/important", etc.join("sentinel.conf")).unwrap();
    std::os::unix::fs::symlink("/etc/important", etc.join("redis.conf.new")).unwrap();
    fs::write(etc.join("redis.conf"), "# edited\n").unwrap();
    let shipped = host.path(&format!("{}/etc/redis.conf", host.release));
    let mut newer = fs::read_to_string(&shipped).unwrap();
    newer.push_str("# a newer release\n");
    fs::write(&shipped, &newer).unwrap();

    let out = host.install("");
    let important = fs::metadata(host.path("/etc/important")).unwrap();
    assert_eq!(host.read("/etc/important"), "root's\n", "{out}");
    assert_eq!((important.mode() & 0o777, important.uid()), (0o600, 0));
    // The .new link was replaced by the file; the sentinel.conf link is
    // left alone as an edit.
    let new = fs::symlink_metadata(etc.join("redis.conf.new")).unwrap();
    assert!(new.file_type().is_file(), "{out}");
    assert_eq!(
        fs::read_to_string(etc.join("redis.conf.new")).unwrap(),
        newer
    );
    assert!(fs::symlink_metadata(etc.join("sentinel.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(
        out.contains("kept /opt/portable-redis/etc/sentinel.conf (edited here)"),
        "{out}"
    );
}

#[test]
fn admin_links_and_setgid_folders_are_respected_and_old_manifests_cannot_steer_removals() {
    let test =
        "admin_links_and_setgid_folders_are_respected_and_old_manifests_cannot_steer_removals";
    if let Some(why) = unavailable() {
        return skip(test, &why);
    }
    let host = Host::new("install-admin", Init::Sysv, "/bin/sh");
    // The data folder on another disk, a setgid /var/log.
    fs::create_dir_all(host.path("/data/redis")).unwrap();
    std::os::unix::fs::symlink("/data/redis", host.path("/var/lib/portable-redis")).unwrap();
    fs::set_permissions(host.path("/var/log"), fs::Permissions::from_mode(0o2755)).unwrap();
    host.install("");
    let (ok, out) = host.sh(&format!(
        "/etc/init.d/redis-server start && {} /opt/portable-redis/bin/redis-cli set k v && \
         /etc/init.d/redis-server stop",
        wait_pong(PREFIX)
    ));
    assert!(ok, "{out}");
    assert!(host.path("/data/redis/dump.rdb").is_file(), "{out}");
    let out = host.install("");
    assert!(out.contains("nothing changed"), "{out}");

    // A manifest of an earlier install names files below etc/, which the
    // redis user owns: a link it put there is not followed to remove them.
    fs::create_dir_all(host.path("/etc/victim")).unwrap();
    fs::write(host.path("/etc/victim/redis-server"), "keep me\n").unwrap();
    std::os::unix::fs::symlink("/etc/victim", host.path("/opt/portable-redis/etc/init.d")).unwrap();
    let manifest = host.path("/opt/portable-redis/share/portable-redis/manifest");
    let mut m = fs::read_to_string(&manifest).unwrap();
    m.push_str("etc/init.d/redis-server\n");
    fs::write(&manifest, m).unwrap();
    let out = host.install("");
    assert_eq!(host.read("/etc/victim/redis-server"), "keep me\n", "{out}");
    let (ok, out) = host.sh("/opt/portable-redis/install.sh --uninstall");
    assert!(ok, "{out}");
    assert_eq!(host.read("/etc/victim/redis-server"), "keep me\n", "{out}");
    assert!(host.path("/data/redis/dump.rdb").is_file());
}
