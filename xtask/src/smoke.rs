//! Stage 7, smoke: the packaged redis-server starts on free loopback ports with
//! TLS (certificates made now) and answers PING over TLS from the packaged
//! redis-cli, and over plain TCP.

use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::{bail, Context, Result};

use crate::{
    emulator::Runner,
    server::{free_port, info_field, loopback_args, Server},
};

/// A CA and one certificate signed by it, written as PEM.
pub struct TlsFiles {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl TlsFiles {
    /// redis-server's TLS settings as `(directive, value)`: the certificate
    /// it serves, its key and the CA it checks clients against.
    pub fn server_settings(&self) -> [(&'static str, String); 3] {
        [
            ("tls-cert-file", self.cert.display().to_string()),
            ("tls-key-file", self.key.display().to_string()),
            ("tls-ca-cert-file", self.ca.display().to_string()),
        ]
    }

    /// redis-server's arguments to serve TLS on `tls_port` with these files.
    pub fn server_args(&self, tls_port: u16) -> Vec<String> {
        let mut args = vec!["--tls-port".to_string(), tls_port.to_string()];
        for (directive, value) in self.server_settings() {
            args.extend([format!("--{directive}"), value]);
        }
        args
    }

    /// redis-cli's and redis-benchmark's arguments to connect over TLS:
    /// trust the CA, present the certificate.
    pub fn client_args(&self) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        ["--tls", "--cacert"]
            .map(String::from)
            .into_iter()
            .chain([
                p(&self.ca),
                "--cert".into(),
                p(&self.cert),
                "--key".into(),
                p(&self.key),
            ])
            .collect()
    }
}

/// The `openssl` configuration of the two certificates: a CA, and a leaf for
/// localhost and 127.0.0.1 that serves as the server's and the client's.
const CERT_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
subjectKeyIdentifier = hash
[leaf]
subjectAltName = DNS:localhost,IP:127.0.0.1
";

/// A CA (`ca.crt`) and a certificate for localhost and 127.0.0.1 signed by
/// it (`redis.crt`, `redis.key`), ECDSA P-256, made by the `openssl` command
/// in `dir`.
pub fn make_certificates(dir: &Path) -> Result<TlsFiles> {
    fs::create_dir_all(dir)?;
    let config = dir.join("certificates.cnf");
    fs::write(&config, CERT_CONFIG)?;
    let files = TlsFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join("redis.crt"),
        key: dir.join("redis.key"),
    };
    let (ca_key, request) = (dir.join("ca.key"), dir.join("redis.csr"));
    let p = |p: &Path| p.display().to_string();
    let p256 = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-config", &p(&config), "-x509"][..],
            &p256,
            &["-keyout", &p(&ca_key), "-out", &p(&files.ca)],
            &["-subj", "/CN=portable-redis smoke CA", "-days", "36500"],
            &["-sha256", "-extensions", "ca"],
        ]
        .concat(),
    )?;
    openssl(
        &[
            &["req", "-config", &p(&config), "-new"][..],
            &p256,
            &["-keyout", &p(&files.key), "-out", &p(&request)],
            &["-subj", "/CN=localhost"],
        ]
        .concat(),
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p(&request),
        "-CA",
        &p(&files.ca),
        "-CAkey",
        &p(&ca_key),
        "-set_serial",
        "2",
        "-days",
        "36500",
        "-sha256",
        "-extfile",
        &p(&config),
        "-extensions",
        "leaf",
        "-out",
        &p(&files.cert),
    ])?;
    Ok(files)
}

/// Run the `openssl` command; its message on failure.
fn openssl(args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .env_remove("OPENSSL_CONF")
        .output()
        .context(
            "running `openssl`: the smoke test makes its certificates with the openssl \
             command (apt-get install openssl)",
        )?;
    if !out.status.success() {
        bail!(
            "openssl {} failed ({}): {}",
            args.iter().take(4).copied().collect::<Vec<_>>().join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// What the smoke test saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmokeReport {
    pub plain_ping: String,
    pub tls_ping: String,
    pub server_version: String,
    /// The emulator the programs ran under, if not this machine itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulator: Option<String>,
}

/// Start `bin/redis-server` with TLS and PING it with `bin/redis-cli`, both
/// started by `runner`.
pub fn smoke(runner: &Runner, bin: &Path, work: &Path) -> Result<SmokeReport> {
    let tls = make_certificates(&work.join("tls"))?;
    let port = free_port()?;
    let tls_port = free_port()?;
    let mut args = loopback_args(port, &["--appendonly", "no", "--daemonize", "no"]);
    args.extend(tls.server_args(tls_port));
    let server_bin = bin.join("redis-server");
    // What the server (or its emulator) says before its log is open.
    let stderr_path = work.join("server.stderr");
    let mut command = runner.command(&server_bin);
    command.stderr(
        fs::File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?,
    );
    let mut server = Server::spawn_command(command, &work.join("data"), port, &args)
        .with_context(|| format!("starting {}", server_bin.display()))?;
    server
        .wait_ready(Duration::from_secs(60))
        .with_context(|| {
            let said = fs::read_to_string(&stderr_path).unwrap_or_default();
            format!(
                "{} did not answer{}; it said on stderr: {}",
                server_bin.display(),
                runner
                    .described
                    .as_ref()
                    .map(|e| format!(" under {e}"))
                    .unwrap_or_default(),
                said.trim()
            )
        })?;

    let cli = bin.join("redis-cli");
    let run_cli = |args: &[&str]| run_cli(runner, &cli, args);
    let plain_ping = run_cli(&["-h", "127.0.0.1", "-p", &port.to_string(), "PING"])?;
    let over_tls = |command: &[&str]| {
        let mut args = tls.client_args();
        args.extend(["-h", "127.0.0.1", "-p", &tls_port.to_string()].map(String::from));
        args.extend(command.iter().map(|a| a.to_string()));
        run_cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let tls_ping = over_tls(&["PING"])?;
    let info = over_tls(&["INFO", "server"])?;
    let server_version = info_field(&info, "redis_version")
        .unwrap_or("?")
        .to_string();
    server.kill()?;
    if plain_ping != "PONG" || tls_ping != "PONG" {
        bail!(
            "smoke: PING answered `{plain_ping}` over TCP and `{tls_ping}` over TLS; log:\n{}",
            server.log_tail()
        );
    }
    Ok(SmokeReport {
        plain_ping,
        tls_ping,
        server_version,
        emulator: runner.described.clone(),
    })
}

fn run_cli(runner: &Runner, cli: &Path, args: &[&str]) -> Result<String> {
    let out = runner
        .command(cli)
        .args(args)
        .output()
        .with_context(|| format!("running {}", cli.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}",
            cli.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The certificate chains to the CA as a server's and as a client's, and
    /// names localhost and 127.0.0.1.
    #[test]
    fn the_certificates_chain_and_name_the_loopback() {
        let d = tempfile::tempdir().unwrap();
        let tls = make_certificates(d.path()).unwrap();
        for purpose in ["sslserver", "sslclient"] {
            let out = Command::new("openssl")
                .args(["verify", "-purpose", purpose, "-CAfile"])
                .arg(&tls.ca)
                .arg(&tls.cert)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{purpose}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&tls.cert)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("DNS:localhost, IP Address:127.0.0.1"),
            "{text}"
        );
        assert!(text.contains("prime256v1"), "{text}");
        assert!(fs::read_to_string(&tls.key)
            .unwrap()
            .contains("PRIVATE KEY"));
    }
}
