//! Evidence end to end: a running Sluice signs checkpoints with its key,
//! serves RFC 9162 proofs that an independent Python implementation
//! verifies, and `audit export` / `audit verify DIR --key` catch tampering
//! without the server.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{ScratchDb, Sluice, api_key, config, psql, sluice_cli};

/// RFC 9162 verification in a few lines of Python with hashlib, reading the
/// leaves straight from the SQLite file (independent of Sluice's code).
const PY_VERIFY: &str = r#"
import hashlib, json, sqlite3, sys
db, incl, cons = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
H = lambda b: hashlib.sha256(b).digest()
bodies = [r[0].encode() for r in sqlite3.connect(db).execute("select body from audit_records order by seq")]
leaf = lambda i: H(b"\x00" + bodies[i])
node = lambda l, r: H(b"\x01" + l + r)
def mth(lo, hi):
    if hi - lo == 1: return leaf(lo)
    k = 1
    while k * 2 < hi - lo: k *= 2
    return node(mth(lo, lo + k), mth(lo + k, hi))
def verify_inclusion(index, size, proof, root):
    fn, sn, r = index, size - 1, leaf(index)
    for p in proof:
        if sn == 0: return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while fn & 1 == 0 and fn != 0: fn >>= 1; sn >>= 1
        else: r = node(r, p)
        fn >>= 1; sn >>= 1
    return sn == 0 and r == root
def verify_consistency(m, n, proof, old, new):
    if m == n: return not proof and old == new
    if m & (m - 1) == 0: proof = [old] + proof
    fn, sn = m - 1, n - 1
    while fn & 1: fn >>= 1; sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0: return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while fn & 1 == 0 and fn != 0: fn >>= 1; sn >>= 1
        else: sr = node(sr, c)
        fn >>= 1; sn >>= 1
    return fr == old and sr == new and sn == 0
b = bytes.fromhex
ok_i = (incl["leaf_hash"] == leaf(incl["leaf_index"]).hex()
        and b(incl["root"]) == mth(0, incl["tree_size"])
        and verify_inclusion(incl["leaf_index"], incl["tree_size"], [b(p) for p in incl["proof"]], b(incl["root"])))
ok_c = (b(cons["first_root"]) == mth(0, cons["first"]) and b(cons["second_root"]) == mth(0, cons["second"])
        and verify_consistency(cons["first"], cons["second"], [b(p) for p in cons["proof"]], b(cons["first_root"]), b(cons["second_root"])))
# A proof for another leaf must not verify (the check can fail).
bad = verify_inclusion(incl["leaf_index"] ^ 1, incl["tree_size"], [b(p) for p in incl["proof"]], b(incl["root"]))
print(json.dumps({"inclusion": ok_i, "consistency": ok_c, "wrong_leaf": bad, "leaves": len(bodies)}))
"#;

fn generate_key(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["keys", "generate", "--out"])
        .arg(&path)
        .output()
        .expect("sluice keys generate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn checkpoints_and_proofs_verify_independently_and_exports_catch_tampering() {
    let db = ScratchDb::create("sluice_evidence");
    db.sql("CREATE TABLE visits (id int, note text); INSERT INTO visits SELECT g, 'visit ' || g FROM generate_series(1, 5) g");
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "node.key");
    let public = keys.path().join("node.key.pub");
    let (token, hash) = api_key();
    let extra = format!("[audit]\nsigning_key_file = \"{}\"\ncheckpoint_interval = \"200ms\"\n", key.display());
    let mut sluice = Sluice::start(&config(&hash, "clinic", &db.name, "sqlite://data/audit.db", &extra));
    let dsn = sluice.dsn("clinic", &token);
    for i in 0..40 {
        let (ok, _, err) = psql(&dsn, &format!("select count(*) + {i} from visits"));
        assert!(ok, "{err}");
    }

    // A checkpoint covering everything so far appears within the interval.
    let deadline = Instant::now() + Duration::from_secs(10);
    let checkpoint = loop {
        let (status, _, body) = sluice.http("GET", "/api/audit/checkpoint", None, None);
        if status == 200 && body["size"].as_u64().unwrap_or(0) >= 160 {
            break body;
        }
        assert!(Instant::now() < deadline, "no checkpoint: {status} {body}\n{}", sluice.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let size = checkpoint["size"].as_u64().unwrap();
    let public_text = std::fs::read_to_string(&public).unwrap();
    assert_eq!(checkpoint["public_key"].as_str().unwrap(), public_text.trim());
    let note = checkpoint["note"].as_str().unwrap();
    assert!(note.starts_with(&format!("{}\n{size}\n", checkpoint["origin"].as_str().unwrap())), "{note}");
    assert!(note.contains("\n\n\u{2014} sluice "), "C2SP signature line: {note}");
    let (status, headers, _) = sluice.http("GET", "/api/audit/checkpoint?format=note", None, None);
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: text/plain"), "{headers}");

    // Proofs from the API, checked by Python's hashlib against the file.
    let (status, _, inclusion) =
        sluice.http("GET", &format!("/api/audit/proof/inclusion?leaf=37&size={size}"), None, None);
    assert_eq!(status, 200, "{inclusion}");
    let (status, _, consistency) =
        sluice.http("GET", &format!("/api/audit/proof/consistency?from=21&to={size}"), None, None);
    assert_eq!(status, 200, "{consistency}");
    let store = sluice.dir.path().join("data/audit.db");
    let out = Command::new("python3")
        .args(["-c", PY_VERIFY])
        .arg(&store)
        .arg(inclusion.to_string())
        .arg(consistency.to_string())
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verdict: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(verdict["inclusion"], true, "{verdict}");
    assert_eq!(verdict["consistency"], true, "{verdict}");
    assert_eq!(verdict["wrong_leaf"], false, "{verdict}");
    for (path, want) in [
        (format!("/api/audit/proof/inclusion?leaf={size}&size={size}"), 400),
        (format!("/api/audit/proof/inclusion?leaf=0&size={}", size + 1_000_000), 400),
        ("/api/audit/proof/consistency?from=x".to_string(), 400),
    ] {
        let (status, _, body) = sluice.http("GET", &path, None, None);
        assert_eq!(status, want, "{path}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }

    // Stop (a last checkpoint is signed), then check the live store and an export.
    assert!(sluice.terminate().success());
    let live = sluice.cli(&["audit", "verify"]);
    assert!(live.status.success(), "{}", stdout(&live));
    assert!(stdout(&live).contains("audit log intact"), "{}", stdout(&live));
    let out_dir = sluice.dir.path().join("export");
    let export = sluice.cli(&["audit", "export", "--out", out_dir.to_str().unwrap()]);
    assert!(export.status.success(), "{}{}", stdout(&export), String::from_utf8_lossy(&export.stderr));
    let verify = |dir: &Path, key: &Path| {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["audit", "verify"])
            .arg(dir)
            .arg("--key")
            .arg(key)
            .env_remove("SLUICE_CONFIG")
            .output()
            .unwrap()
    };
    let clean = verify(&out_dir, &public);
    assert!(clean.status.success(), "{}", stdout(&clean));
    assert!(stdout(&clean).contains("signed checkpoints verified"), "{}", stdout(&clean));

    // One byte of record 30 changed: named, exit 1.
    let records = out_dir.join("records.jsonl");
    let text = std::fs::read_to_string(&records).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[29] = lines[29].replacen("\"type\":\"", "\"type\":\"x", 1);
    std::fs::write(&records, lines.join("\n") + "\n").unwrap();
    let flipped = verify(&out_dir, &public);
    assert_eq!(flipped.status.code(), Some(1), "{}", stdout(&flipped));
    assert!(stdout(&flipped).contains("BROKEN at record 30"), "{}", stdout(&flipped));
    std::fs::write(&records, text).unwrap();

    // A key that did not sign the checkpoints is rejected.
    generate_key(keys.path(), "other.key");
    let rejected = verify(&out_dir, &keys.path().join("other.key.pub"));
    assert_eq!(rejected.status.code(), Some(1), "{}", stdout(&rejected));
    assert!(stdout(&rejected).contains("checkpoint"), "{}", stdout(&rejected));
    let no_key = sluice_cli(&["audit", "verify", out_dir.to_str().unwrap()], Path::new("/nonexistent"));
    assert!(!no_key.status.success());
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("needs --key"), "{no_key:?}");
}

fn count(store: &Path, sql: &str) -> u64 {
    let out = Command::new("python3")
        .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])"])
        .arg(store)
        .arg(sql)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stdout(&out).trim().parse().unwrap()
}

#[test]
fn prune_deletes_recording_payloads_and_the_log_still_verifies() {
    let db = ScratchDb::create("sluice_prune");
    db.sql("CREATE TABLE visits (id int, note text); INSERT INTO visits VALUES (1, 'first')");
    let keys = tempfile::tempdir().unwrap();
    let key = generate_key(keys.path(), "node.key");
    let (token, hash) = api_key();
    let audit = format!("[audit]\nsigning_key_file = \"{}\"\n", key.display());
    let held = config(&hash, "clinic", &db.name, "sqlite://data/audit.db", &audit).replace(
        "tls = \"disable\"\n",
        "tls = \"disable\"\nretention = { payload_days = 0, statement_days = 0, legal_hold = true }\n",
    );
    assert!(held.contains("legal_hold = true"));
    let mut sluice = Sluice::start(&held);
    let dsn = sluice.dsn("clinic", &token);
    for sql in ["select note from visits", "select 2"] {
        let (ok, _, err) = psql(&dsn, sql);
        assert!(ok, "{err}");
    }
    let busy = sluice.cli(&["audit", "prune"]);
    assert!(!busy.status.success(), "a second writer must be refused");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("another Sluice process"), "{busy:?}");
    assert!(sluice.terminate().success());
    let store = sluice.dir.path().join("data/audit.db");
    let payloads = count(&store, "select count(*) from audit_payloads");
    assert!(payloads >= 2, "each psql session leaves at least its last chunk ({payloads})");

    let dry = sluice.cli(&["audit", "prune", "--dry-run"]);
    assert!(stdout(&dry).contains("nothing is due"), "legal hold: {}", stdout(&dry));
    std::fs::write(&sluice.config_path, held.replace("legal_hold = true", "legal_hold = false")).unwrap();
    let dry = sluice.cli(&["audit", "prune", "--dry-run", "--json"]);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(plan[0]["connection"], "clinic");
    assert_eq!(plan[0]["chunks"].as_array().unwrap().len() as u64, payloads, "{plan}");
    assert_eq!(count(&store, "select count(*) from audit_payloads"), payloads, "a dry run changes nothing");

    let pruned = sluice.cli(&["audit", "prune"]);
    assert!(pruned.status.success(), "{}{}", stdout(&pruned), String::from_utf8_lossy(&pruned.stderr));
    assert_eq!(count(&store, "select count(*) from audit_payloads"), 0);
    assert_eq!(count(&store, "select count(*) from audit_records where kind = 'payloads_pruned'"), 2);
    assert_eq!(count(&store, "select count(*) from audit_records where body like '%select note from visits%'"), 0);
    assert_eq!(count(&store, "select count(*) from audit_redactions"), 2, "both statements lost their text");
    let verify = sluice.cli(&["audit", "verify", "--json"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let report: serde_json::Value = serde_json::from_str(&stdout(&verify)).unwrap();
    assert_eq!(report["payloads_pruned"].as_u64(), Some(payloads), "{report}");
    assert!(report["checkpoints_verified"].as_u64().unwrap() >= 2, "the prune is under a checkpoint too: {report}");

    // index_days: the sessions' records themselves expire; verify still passes.
    let expiring = held.replace("legal_hold = true", "index_days = 0, legal_hold = false");
    std::fs::write(&sluice.config_path, &expiring).unwrap();
    let dry = sluice.cli(&["audit", "prune", "--dry-run"]);
    assert!(stdout(&dry).contains("records expire") && stdout(&dry).contains("index_days = 0"), "{}", stdout(&dry));
    let clinic =
        count(&store, "select count(*) from audit_records where connection = 'clinic' and kind <> 'payloads_pruned'");
    let expired = sluice.cli(&["audit", "prune"]);
    assert!(expired.status.success(), "{}{}", stdout(&expired), String::from_utf8_lossy(&expired.stderr));
    assert_eq!(count(&store, "select count(*) from audit_records where kind = 'expired'"), clinic);
    assert_eq!(
        count(&store, "select count(*) from audit_records where principal is not null and connection = 'clinic'"),
        0
    );
    let verify = sluice.cli(&["audit", "verify", "--json"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let sessions = sluice.cli(&["sessions", "list", "--json"]);
    assert!(sessions.status.success(), "{}", String::from_utf8_lossy(&sessions.stderr));
    assert_eq!(stdout(&sessions).trim(), "", "expired sessions are no longer listed (one JSON line each)");
}
