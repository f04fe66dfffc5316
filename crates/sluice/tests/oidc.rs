//! OIDC end to end: real clients log in through Sluice with access tokens
//! from a real OpenID Provider (tests/oidc-provider), and every token in the
//! attack set is refused with 28P01.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};
use support::raw::{self, RawClient};
use support::{ScratchDb, Sluice, UNMASKED, api_key, config, workspace_root};

/// One running provider; it exits when its stdin closes (on drop).
struct Provider {
    child: Child,
    announce: Value,
}

impl Provider {
    fn start() -> Provider {
        let dir = workspace_root().join("tests/oidc-provider");
        if !dir.join("node_modules/oidc-provider").exists() {
            let npm = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().unwrap();
            assert!(npm.success(), "npm ci in tests/oidc-provider failed");
        }
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let announce: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("provider said {line:?}: {e}"));
        Provider { child, announce }
    }

    fn issuer(&self) -> &str {
        self.announce["issuer"].as_str().unwrap()
    }

    /// A client-credentials access token (JWT) for `resource`.
    fn token(&self, resource: &str) -> String {
        let discovery = curl(&["-sf", &format!("{}/.well-known/openid-configuration", self.issuer())]);
        let endpoint = discovery["token_endpoint"].as_str().unwrap().to_string();
        let answer = curl(&[
            "-sf",
            "-u",
            "sluice-test:sluice-test-secret",
            "-d",
            "grant_type=client_credentials",
            "-d",
            &format!("resource={resource}"),
            &endpoint,
        ]);
        answer["access_token"].as_str().unwrap_or_else(|| panic!("no access_token in {answer}")).to_string()
    }

    fn private_key(&self) -> EncodingKey {
        let pem = std::fs::read(self.announce["private_pem_file"].as_str().unwrap()).unwrap();
        EncodingKey::from_rsa_pem(&pem).unwrap()
    }

    fn kid(&self) -> String {
        self.announce["kid"].as_str().unwrap().to_string()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(args: &[&str]) -> Value {
    let out = Command::new("curl").args(args).output().expect("curl runs");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn start(db: &ScratchDb, provider: &Provider) -> Sluice {
    let (_, hash) = api_key();
    let oidc = format!(
        "{UNMASKED}[[identity.oidc]]\nissuer = \"{}\"\naudience = \"sluice\"\nleeway = \"5s\"\n",
        provider.issuer()
    );
    Sluice::start(&config(&hash, "patients", &db.name, "sqlite://data/audit.db", &oidc))
}

#[test]
fn clients_log_in_with_an_oidc_access_token() {
    let provider = Provider::start();
    let db = ScratchDb::create("sluice_oidc");
    let sluice = start(&db, &provider);
    let token = provider.token("urn:sluice");
    for (program, script) in [("python3", "pg_scenario.py"), ("node", "pg_scenario.mjs"), ("bash", "psql_scenario.sh")]
    {
        let out = Command::new(program)
            .arg(workspace_root().join("tests/clients").join(script))
            .args(["--direct", &db.direct_dsn(), "--via", &sluice.dsn("patients", &token)])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("8 passed, 0 failed"),
            "{script}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The session is recorded under the token's subject and groups.
    let out = sluice.cli(&["audit", "search", "--kind", "session_open", "--json"]);
    let first: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["event"]["principal"]["issuer"], provider.issuer());
    assert_eq!(first["event"]["principal"]["groups"], json!(["analysts"]));
}

#[test]
fn every_token_in_the_attack_set_is_refused_with_28p01() {
    let provider = Provider::start();
    let stranger = Provider::start();
    let db = ScratchDb::create("sluice_oidc");
    let sluice = start(&db, &provider);
    let genuine = provider.token("urn:sluice");
    let claims = |iss: &str, aud: &str, exp: i64| json!({"iss": iss, "aud": aud, "sub": "mallory", "exp": exp, "iat": now() - 10, "groups": ["admins"]});
    let sign = |header: Header, claims: &Value| jsonwebtoken::encode(&header, claims, &provider.private_key()).unwrap();
    let rs256 = |kid: &str| Header { kid: Some(kid.to_string()), ..Header::new(Algorithm::RS256) };
    let issuer = provider.issuer().to_string();
    let good_claims = claims(&issuer, "sluice", now() + 600);

    let unsigned = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(good_claims.to_string());
        format!("{header}.{body}.")
    };
    let hs256_with_public_key = {
        let public_pem = std::fs::read(provider.announce["public_pem_file"].as_str().unwrap()).unwrap();
        let header = Header { kid: Some(provider.kid()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, &good_claims, &EncodingKey::from_secret(&public_pem)).unwrap()
    };
    let bad_signature = {
        let (head, sig) = genuine.rsplit_once('.').unwrap();
        let mut sig = sig.as_bytes().to_vec();
        sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
        format!("{head}.{}", String::from_utf8(sig).unwrap())
    };
    let attacks = [
        ("alg=none", unsigned),
        ("HS256 keyed with the public key", hs256_with_public_key),
        ("expired", sign(rs256(&provider.kid()), &claims(&issuer, "sluice", now() - 3600))),
        ("wrong issuer", sign(rs256(&provider.kid()), &claims("http://127.0.0.1:1", "sluice", now() + 600))),
        ("wrong audience", sign(rs256(&provider.kid()), &claims(&issuer, "billing", now() + 600))),
        ("unknown kid", sign(rs256("no-such-key"), &good_claims)),
        ("bad signature", bad_signature),
        ("another provider's token", stranger.token("urn:sluice")),
        ("not a token at all", "eyJhbGciOi.garbage.x".to_string()),
    ];
    for (name, token) in attacks {
        let (code, message) = raw::login_error(sluice.port(), "patients", &token);
        assert_eq!(code, "28P01", "{name}: {message}");
        assert!(!message.contains(&token), "{name}: the error echoes the token");
    }
    // The genuine token still works, so the refusals above were not an outage.
    let mut client = RawClient::login(sluice.port(), "patients", &genuine);
    client.send(&raw::query("select 1"));
    client.read_until_ready();
    let failures = sluice.cli(&["audit", "search", "--kind", "auth_failure", "--json"]);
    assert_eq!(String::from_utf8_lossy(&failures.stdout).lines().count(), 9);
}
