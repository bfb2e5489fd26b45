//! Running real `redis-server` processes on loopback: free ports, readiness,
//! a tiny RESP client, and a guard that stops the process when dropped.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

/// A port nothing listens on right now (the kernel's choice).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(l.local_addr()?.port())
}

/// A port `p` such that `p` and `p + 10000` (the cluster bus) are both free.
pub fn free_cluster_port() -> Result<u16> {
    for _ in 0..200 {
        let p = free_port()?;
        if p < 55_000 && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return Ok(p);
        }
    }
    bail!("no free port pair (p, p+10000) on loopback")
}

/// Send one command as RESP and read one reply, rendered as text.
pub fn command(port: u16, args: &[&str], timeout: Duration) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    let mut r = BufReader::new(s);
    read_reply(&mut r)
}

/// redis-server's arguments to serve on loopback `port` and save nothing,
/// then `extra`.
pub fn loopback_args(port: u16, extra: &[&str]) -> Vec<String> {
    let port = port.to_string();
    ["--port", &port, "--bind", "127.0.0.1", "--save", ""]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect()
}

/// The value of `field` in an `INFO` or `CLUSTER INFO` reply
/// (`field:value` lines).
pub fn info_field<'a>(reply: &'a str, field: &str) -> Option<&'a str> {
    reply.lines().find_map(|l| {
        l.trim()
            .strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

fn read_reply(r: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("connection closed");
    }
    let line = line.trim_end_matches("\r\n").to_string();
    let (kind, rest) = line.split_at(1.min(line.len()));
    match kind {
        "+" | ":" => Ok(rest.to_string()),
        "-" => Ok(format!("ERR {rest}")),
        "$" => {
            let n: i64 = rest.parse()?;
            if n < 0 {
                return Ok(String::new());
            }
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(n as usize);
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        "*" => {
            let n: i64 = rest.parse()?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_reply(r)?);
            }
            Ok(items.join("\n"))
        }
        _ => bail!("unexpected reply `{line}`"),
    }
}

/// A running redis-server; stopped (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    /// Start `binary` with `args` (options after any config file) in `dir`,
    /// logging to `dir/redis.log`.
    pub fn spawn(binary: &Path, dir: &Path, port: u16, args: &[String]) -> Result<Server> {
        Server::spawn_env(binary, dir, port, args, &[])
    }

    /// [`Server::spawn`] with extra environment variables.
    pub fn spawn_env(
        binary: &Path,
        dir: &Path,
        port: u16,
        args: &[String],
        env: &[(&str, &Path)],
    ) -> Result<Server> {
        let mut cmd = Command::new(binary);
        cmd.envs(env.iter().copied()).stderr(Stdio::null());
        Server::spawn_command(cmd, dir, port, args)
            .with_context(|| format!("starting {}", binary.display()))
    }

    /// Start `cmd` (a redis-server, or a loader running one) with `args`
    /// and `--logfile dir/redis.log`, in `dir`. Its stderr is what `cmd`
    /// says it is (the caller's choice).
    pub fn spawn_command(
        mut cmd: Command,
        dir: &Path,
        port: u16,
        args: &[String],
    ) -> Result<Server> {
        std::fs::create_dir_all(dir)?;
        let log = dir.join("redis.log");
        let child = cmd
            .args(args)
            .arg("--logfile")
            .arg(&log)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        Ok(Server {
            child,
            port,
            dir: dir.to_path_buf(),
            log,
        })
    }

    /// Wait until PING answers PONG on the plain port.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "redis-server exited ({status}) before answering; log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(reply) = command(self.port, &["PING"], Duration::from_millis(500)) {
                if reply == "PONG" {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "redis-server did not answer PING within {timeout:?}; log:\n{}",
            self.log_tail()
        )
    }

    pub fn log_tail(&self) -> String {
        crate::run::tail(&self.log, 20).unwrap_or_else(|_| "(no log)".into())
    }

    /// Stop with SIGKILL and reap.
    pub fn kill(&mut self) -> Result<Option<ExitStatus>> {
        let _ = self.child.kill();
        Ok(self.child.wait().ok())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::info_field;

    #[test]
    fn info_fields_are_found_by_whole_name() {
        let reply = "# Server\r\nredis_version:7.0.15\r\nredis_version_extra:x\r\n\
                     cluster_state:ok\r\nused_cpu_sys:1.25\r\n";
        assert_eq!(info_field(reply, "redis_version"), Some("7.0.15"));
        assert_eq!(info_field(reply, "cluster_state"), Some("ok"));
        assert_eq!(info_field(reply, "used_cpu_sys"), Some("1.25"));
        assert_eq!(info_field(reply, "redis"), None);
    }
}
