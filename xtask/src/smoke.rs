//! Stage 7, smoke: the packaged redis-server starts on free loopback ports with
//! TLS (certificates made now) and answers PING over TLS from the packaged
//! redis-cli, and over plain TCP.

use std::{fs, path::Path, process::Command, time::Duration};

use anyhow::{bail, Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::server::{free_port, info_field, Server};

/// A CA, a server certificate and a client certificate, written as PEM.
pub struct TlsFiles {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

pub fn make_certificates(dir: &Path) -> Result<TlsFiles> {
    fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "portable-redis smoke CA");
    let ca_cert = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;

    let files = TlsFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join("redis.crt"),
        key: dir.join("redis.key"),
    };
    fs::write(&files.ca, ca_cert.pem())?;
    fs::write(&files.cert, cert.pem())?;
    fs::write(&files.key, key.serialize_pem())?;
    Ok(files)
}

/// What the smoke test saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmokeReport {
    pub plain_ping: String,
    pub tls_ping: String,
    pub server_version: String,
}

/// Start `bin/redis-server` with TLS and PING it with `bin/redis-cli`.
pub fn smoke(bin: &Path, work: &Path) -> Result<SmokeReport> {
    let tls = make_certificates(&work.join("tls"))?;
    let port = free_port()?;
    let tls_port = free_port()?;
    let s = |p: &Path| p.display().to_string();
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &s(&tls.cert),
        "--tls-key-file",
        &s(&tls.key),
        "--tls-ca-cert-file",
        &s(&tls.ca),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut server = Server::spawn(&bin.join("redis-server"), &work.join("data"), port, &args)?;
    server.wait_ready(Duration::from_secs(20))?;

    let cli = bin.join("redis-cli");
    let plain_ping = run_cli(&cli, &["-h", "127.0.0.1", "-p", &port.to_string(), "PING"])?;
    let tls_ping = run_cli(
        &cli,
        &[
            "--tls",
            "--cacert",
            &s(&tls.ca),
            "--cert",
            &s(&tls.cert),
            "--key",
            &s(&tls.key),
            "-h",
            "127.0.0.1",
            "-p",
            &tls_port.to_string(),
            "PING",
        ],
    )?;
    let info = run_cli(
        &cli,
        &[
            "--tls",
            "--cacert",
            &s(&tls.ca),
            "--cert",
            &s(&tls.cert),
            "--key",
            &s(&tls.key),
            "-h",
            "127.0.0.1",
            "-p",
            &tls_port.to_string(),
            "INFO",
            "server",
        ],
    )?;
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
    })
}

fn run_cli(cli: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(cli)
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
