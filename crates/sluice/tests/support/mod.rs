//! End-to-end test support: a real `sluice serve` process on port 0, a
//! uniquely named scratch database on the machine's PostgreSQL, and the
//! command-line clients.
//!
//! Owns: starting and stopping those, and nothing about what is tested.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod cluster;
pub mod raw;

use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DIRECT_HOST: &str = "127.0.0.1";
pub const DIRECT_PORT: u16 = 5432;

/// A fresh random API key and its configured SHA-256.
pub fn api_key() -> (String, String) {
    let key = format!("sk_test_{}", hex::encode(rand::random::<[u8; 16]>()));
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    (key, hash)
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), hex::encode(rand::random::<[u8; 4]>()))
}

/// Runs SQL on the machine's PostgreSQL as root, directly.
pub fn admin_sql(database: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            DIRECT_HOST,
            "-p",
            &DIRECT_PORT.to_string(),
            "-U",
            "root",
            "-d",
            database,
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "admin SQL failed: {sql}\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A database that exists for one test and is dropped after it.
pub struct ScratchDb {
    pub name: String,
}

impl ScratchDb {
    pub fn create(prefix: &str) -> ScratchDb {
        let name = unique(prefix);
        admin_sql("postgres", &format!("CREATE DATABASE {name}"));
        ScratchDb { name }
    }

    pub fn direct_dsn(&self) -> String {
        format!("postgresql://root@{DIRECT_HOST}:{DIRECT_PORT}/{}?sslmode=disable", self.name)
    }

    pub fn sql(&self, sql: &str) -> String {
        admin_sql(&self.name, sql)
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-h",
                DIRECT_HOST,
                "-U",
                "root",
                "-d",
                "postgres",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A running `sluice serve`, killed when dropped.
pub struct Sluice {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub postgres: SocketAddr,
    pub api: SocketAddr,
}

impl Sluice {
    /// Writes `config` (TOML) to a temp dir and starts Sluice with it. The
    /// config should listen on port 0; the real ports are read back.
    pub fn start(config: &str) -> Sluice {
        Sluice::start_with_env(config, &[])
    }

    /// Like [`Sluice::start`], with extra environment variables for the
    /// `sluice serve` process (for `password_env`).
    pub fn start_with_env(config: &str, envs: &[(&str, &str)]) -> Sluice {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).unwrap();
        let ready = dir.path().join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::File::create(dir.path().join("sluice.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .arg("--ready-file")
            .arg(&ready)
            .env("RUST_LOG", "info,sluice_pg=debug")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sluice starts");
        let mut sluice = Sluice {
            child: Some(child),
            dir,
            config_path,
            postgres: ([0, 0, 0, 0], 0).into(),
            api: ([0, 0, 0, 0], 0).into(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let addrs: serde_json::Value = serde_json::from_str(&text).unwrap();
                sluice.postgres = addrs["postgres"].as_str().unwrap().parse().unwrap();
                sluice.api = addrs["api"].as_str().map(|a| a.parse().unwrap()).unwrap_or(sluice.api);
                return sluice;
            }
            if let Some(status) = sluice.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sluice exited before it was ready ({status}):\n{}", sluice.log());
            }
            assert!(Instant::now() < deadline, "sluice not ready in time:\n{}", sluice.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sluice.log")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.postgres.port()
    }

    /// A libpq URI through Sluice to `connection`, with `token` as the password.
    pub fn dsn(&self, connection: &str, token: &str) -> String {
        format!("postgresql://agent:{token}@127.0.0.1:{}/{connection}?sslmode=disable", self.port())
    }

    /// Key/value form, for tokens that are too long or odd for a URI.
    pub fn conninfo(&self, connection: &str, token: &str) -> String {
        format!("host=127.0.0.1 port={} dbname={connection} user=agent password={token} sslmode=disable", self.port())
    }

    /// One call to the API with curl: (status, lower-case response headers,
    /// JSON body or Null).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String, serde_json::Value) {
        let dir = tempfile::tempdir().unwrap();
        let headers = dir.path().join("headers");
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-D"]).arg(&headers);
        if let Some(token) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        if let Some(body) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary", body]);
        }
        let out = cmd.arg(format!("http://{}{path}", self.api)).output().expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        let headers = std::fs::read_to_string(&headers).unwrap_or_default().to_ascii_lowercase();
        (status.trim().parse().unwrap_or(0), headers, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
    }

    /// Runs `sluice <args> --config <this config>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        sluice_cli(args, &self.config_path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().unwrap();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "sluice did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn sluice_cli(args: &[&str], config: &Path) -> Output {
    sluice_cli_with_env(args, config, &[])
}

/// Runs psql against `dsn`; returns (success, stdout, stderr).
pub fn psql(dsn: &str, sql: &str) -> (bool, String, String) {
    let out =
        Command::new("psql").args(["-X", "-At", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql]).output().expect("psql runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// Config lines that turn masking off by default, for the scenarios that
/// compare every byte through Sluice with the direct connection (masking
/// itself is tested in `masking.rs`).
pub const UNMASKED: &str = "[masking]\ndefault_profile = \"unmasked\"\n";

/// An `[[identity.api_keys]]` entry, for configs with more than the
/// standard agent.
pub fn api_key_entry(name: &str, kind: &str, groups: &[&str], key_sha256: &str) -> String {
    format!(
        "[[identity.api_keys]]\nname = \"{name}\"\nkind = \"{kind}\"\ngroups = {groups:?}\nkey_sha256 = \"{key_sha256}\"\n"
    )
}

/// Runs SQL on a SQLite file with Python's sqlite3: a test's way into
/// Sluice's audit store, beside Sluice.
pub fn sqlite(path: &Path, sql: &str) {
    let out = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
        .arg(path)
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Standard config: one API key, one connection `name` to `database`.
pub fn config(key_sha256: &str, connection: &str, database: &str, storage_url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
api_listen = "127.0.0.1:0"
shutdown_grace = "10s"
[listeners]
postgres = "127.0.0.1:0"
[storage]
url = "{storage_url}"
[[identity.api_keys]]
name = "test-agent"
kind = "agent"
groups = ["analysts"]
key_sha256 = "{key_sha256}"
[[connections]]
name = "{connection}"
kind = "postgres"
upstream = "127.0.0.1:{DIRECT_PORT}"
database = "{database}"
user = "root"
tls = "disable"
{extra}
"#
    )
}

/// The workspace root, where scripts and test clients live.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Runs `sluice <args> --config <config>` with extra environment variables.
pub fn sluice_cli_with_env(args: &[&str], config: &Path, envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .arg("--config")
        .arg(config)
        .envs(envs.iter().copied())
        .output()
        .expect("sluice cli runs")
}

/// Runs `sluice serve --config <config>` expecting it to refuse to start:
/// returns its exit status and stderr once it exits (bounded wait; a
/// process still running after that is killed and the test fails).
pub fn serve_expecting_exit(config: &Path, envs: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let dir = config.parent().unwrap();
    let log_path = dir.join("serve_refused.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config"])
        .arg(config)
        .arg("--ready-file")
        .arg(dir.join("ready_refused.json"))
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("sluice starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, std::fs::read_to_string(&log_path).unwrap_or_default());
        }
        if Instant::now() > deadline || dir.join("ready_refused.json").exists() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sluice serve started instead of refusing:\n{}", std::fs::read_to_string(&log_path).unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
