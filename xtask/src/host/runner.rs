//! Programs run through the old loader, each one's stderr kept for the
//! loader check, and the servers kept for `check` to stop.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{loader_messages, Loader};
use crate::server::{self, info_field, Server};

/// Programs run through the loader, their stderr kept for the loader check.
pub(super) struct Runner<'a> {
    pub(super) loader: &'a Loader,
    pub(super) bin: &'a Path,
    pub(super) work: &'a Path,
    pub(super) stderr_files: Vec<PathBuf>,
    pub(super) servers: Vec<Server>,
}

impl Runner<'_> {
    /// A file for one process's stderr.
    fn stderr_file(&mut self, name: &str) -> Result<fs::File> {
        let p = self.work.join(format!("{name}.stderr"));
        let f = fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        self.stderr_files.push(p);
        Ok(f)
    }

    /// Start `program` (redis-server or redis-sentinel) in `work/name`.
    pub(super) fn server(
        &mut self,
        program: &str,
        name: &str,
        port: u16,
        args: &[String],
    ) -> Result<usize> {
        let mut cmd = self.loader.command(&self.bin.join(program));
        cmd.stderr(Stdio::from(self.stderr_file(name)?));
        let mut s = Server::spawn_command(cmd, &self.work.join(name), port, args)?;
        s.wait_ready(Duration::from_secs(30))
            .with_context(|| format!("{program} ({name}) through the old loader"))?;
        self.servers.push(s);
        Ok(self.servers.len() - 1)
    }

    /// Run a tool through the loader; its stdout.
    pub(super) fn tool(&mut self, program: &str, args: &[&str]) -> Result<String> {
        let name = format!("{program}-{}", self.stderr_files.len());
        let stderr = self.stderr_file(&name)?;
        let out = self
            .loader
            .command(&self.bin.join(program))
            .args(args)
            .current_dir(self.work)
            .stdin(Stdio::null())
            .stderr(Stdio::from(stderr))
            .output()
            .with_context(|| format!("running {program} through the old loader"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "{program} {} exited with {}: {}",
                args.join(" "),
                out.status,
                text.trim()
            );
        }
        Ok(text)
    }

    /// What the loader printed, each line prefixed by the file it came from.
    pub(super) fn loader_messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        for f in &self.stderr_files {
            let text = fs::read_to_string(f).unwrap_or_default();
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            messages.extend(
                loader_messages(&text)
                    .into_iter()
                    .map(|m| format!("{name}: {m}")),
            );
        }
        messages
    }

    pub(super) fn cli(&mut self, port: u16, args: &[&str]) -> Result<String> {
        let p = port.to_string();
        let mut a = vec!["-p", p.as_str()];
        a.extend_from_slice(args);
        Ok(self.tool("redis-cli", &a)?.trim().to_string())
    }
}

pub(super) fn wait_for(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{what}: not within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(super) fn info(port: u16, section: &str, field: &str) -> Result<String> {
    let reply = server::command(port, &["INFO", section], Duration::from_secs(5))?;
    Ok(info_field(&reply, field).unwrap_or("").to_string())
}
