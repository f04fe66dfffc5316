//! Test fixture: a real OpenID Provider (`tests/oidc-provider/server.mjs`,
//! panva/node-oidc-provider) on 127.0.0.1, plus helpers to get tokens from it
//! and to sign crafted tokens with its real private key.
//!
//! Owns: starting `node` (after `npm ci` if `node_modules` is missing),
//! reading its JSON line, stopping it when the fixture is dropped (and, as a
//! backstop, the server exits when its stdin closes, i.e. when this test
//! process dies).
//! Does not: assert anything about `sluice-identity`; tests do.

#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sluice_config::{Identity, OidcProvider};
use sluice_identity::Authenticator;
use sluice_model::PrincipalKind;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long node may take to print its JSON line (cold start generates keys).
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider")
}

/// `npm ci` once per test process, and only when `node_modules` is missing
/// (`scripts/test` normally ran it already).
fn ensure_node_modules() -> Result<(), String> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return Ok(());
    }
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider/package.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run npm ci in {}: {e}", dir.display()))?;
        if !status.success() {
            return Err(format!("npm ci in {} failed: {status}", dir.display()));
        }
    }
    *done = true;
    Ok(())
}

/// What server.mjs printed: where it is and where its current key lives.
#[derive(Debug, Clone)]
pub struct Announce {
    pub issuer: String,
    pub kid: String,
    pub private_pem_file: PathBuf,
    pub public_pem_file: PathBuf,
    pub private_jwk_file: PathBuf,
    pub stats_url: String,
}

impl Announce {
    fn parse(line: &str) -> Result<Announce, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("bad JSON line {line:?}: {e}"))?;
        let text =
            |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string).ok_or(format!("no {name} in {line}"));
        Ok(Announce {
            issuer: text("issuer")?,
            kid: text("kid")?,
            private_pem_file: text("private_pem_file")?.into(),
            public_pem_file: text("public_pem_file")?.into(),
            private_jwk_file: text("private_jwk_file")?.into(),
            stats_url: text("stats_url")?,
        })
    }
}

/// A running server.mjs. Dropping it stops the process.
pub struct OidcServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Mutex<Receiver<String>>,
    pub first: Announce,
}

impl OidcServer {
    pub fn start() -> Result<OidcServer, String> {
        OidcServer::start_on(0)
    }

    pub fn start_on(port: u16) -> Result<OidcServer, String> {
        ensure_node_modules()?;
        let mut child = Command::new("node")
            .arg(provider_dir().join("server.mjs"))
            .args(["--port", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start node: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let said = Arc::new(Mutex::new(Vec::new()));
        let said_by_node = said.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !line.contains("oidc-provider WARNING") && !line.contains("oidc-provider NOTICE") {
                    eprintln!("[oidc-provider] {line}");
                }
                said_by_node.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let started = Instant::now();
        let first = match read_announce(&rx) {
            Ok(first) => first,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = said.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
                return Err(format!("{e} (after {:?}); its stderr:\n{stderr}", started.elapsed()));
            }
        };
        let stdin = child.stdin.take();
        Ok(OidcServer { child, stdin, lines: Mutex::new(rx), first })
    }

    fn next_announce(&self) -> Result<Announce, String> {
        read_announce(&self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes a new RSA key the signing key (the old one stays published).
    pub fn rotate(&mut self) -> Result<Announce, String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin.write_all(b"rotate\n").and_then(|_| stdin.flush()).map_err(|e| e.to_string())?;
        self.next_announce()
    }

    pub fn issuer(&self) -> &str {
        &self.first.issuer
    }

    /// JWKS requests the server has answered.
    pub async fn jwks_requests(&self) -> Result<u64, String> {
        let body = get_json(&self.first.stats_url).await?;
        body.get("jwks_requests").and_then(Value::as_u64).ok_or(format!("bad stats {body}"))
    }
}

fn read_announce(lines: &Receiver<String>) -> Result<Announce, String> {
    let line = lines.recv_timeout(START_TIMEOUT).map_err(|e| format!("server.mjs said nothing: {e}"))?;
    Announce::parse(&line)
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        // On EOF server.mjs deletes its key files and exits; give it a moment
        // to do so before falling back to SIGKILL.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Ok(Some(_)) | Err(_) => return,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One provider shared by the tests that neither count its requests nor
/// change its keys. It lives as long as the test process; when the process
/// exits, its stdin closes and node exits too.
pub fn shared() -> Result<&'static OidcServer, String> {
    static SHARED: OnceLock<Result<OidcServer, String>> = OnceLock::new();
    SHARED.get_or_init(OidcServer::start).as_ref().map_err(Clone::clone)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap_or_default()
}

pub async fn get_json(url: &str) -> Result<Value, String> {
    let response = http().get(url).send().await.map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

/// A real access token from the provider's token endpoint (client
/// credentials, client_secret_basic) for `resource` (e.g. `urn:sluice`).
pub async fn fetch_token(issuer: &str, client_id: &str, resource: &str) -> Result<String, String> {
    let discovery = get_json(&format!("{issuer}/.well-known/openid-configuration")).await?;
    let endpoint = discovery.get("token_endpoint").and_then(Value::as_str).ok_or("no token_endpoint")?;
    let resource: String =
        resource.bytes().map(|b| if b == b':' { "%3A".to_string() } else { (b as char).to_string() }).collect();
    let response = http()
        .post(endpoint)
        .basic_auth(client_id, Some(format!("{client_id}-secret")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&resource={resource}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    body.get("access_token").and_then(Value::as_str).map(str::to_string).ok_or(format!("no access_token in {body}"))
}

/// The `[[identity.oidc]]` entry for a provider, as an operator would write it.
pub fn provider_config(issuer: &str) -> OidcProvider {
    OidcProvider {
        issuer: issuer.to_string(),
        audience: "sluice".into(),
        groups_claim: "groups".into(),
        subject_claim: "sub".into(),
        kind: PrincipalKind::Agent,
        leeway: Duration::from_secs(30),
    }
}

pub fn authenticator(providers: Vec<OidcProvider>) -> Result<Authenticator, String> {
    Authenticator::new(&Identity { api_keys: vec![], oidc: providers }).map_err(|e| e.to_string())
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Claims like a real token's from `issuer`, valid for five minutes.
pub fn claims(issuer: &str) -> Value {
    json!({
        "iss": issuer, "sub": "crafted", "aud": "sluice", "iat": now(),
        "exp": now() + 300, "jti": "crafted-1", "groups": ["analysts"],
    })
}

/// `claims` with `changes` applied; a `null` value removes that claim.
pub fn with(mut claims: Value, changes: Value) -> Value {
    if let (Some(map), Value::Object(changes)) = (claims.as_object_mut(), changes) {
        for (name, value) in changes {
            if value.is_null() {
                map.remove(&name);
            } else {
                map.insert(name, value);
            }
        }
    }
    claims
}

/// Signs `claims` RS256 with a provider's real private key, header `kid`.
pub fn sign_rs256(key: &Announce, claims: &Value) -> Result<String, String> {
    let pem = std::fs::read(&key.private_pem_file).map_err(|e| e.to_string())?;
    let encoding = EncodingKey::from_rsa_pem(&pem).map_err(|e| e.to_string())?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &encoding).map_err(|e| e.to_string())
}

/// A token with any header, the given claims and signature bytes (no signing).
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// One decoded JSON segment of a token: 0 is the header, 1 the claims.
pub fn segment(token: &str, index: usize) -> Result<Value, String> {
    let segment = token.split('.').nth(index).ok_or("no such segment")?;
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// The decoded claims of a token (to reuse a real token's claims).
pub fn claims_of(token: &str) -> Result<Value, String> {
    segment(token, 1)
}

/// Free loopback port: bind, read, release.
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}
