//! The Merkle log on a real SQLite file: signed checkpoints, proofs, export,
//! and offline verify naming each kind of tampering by record.
//!
//! Owns: behaviour of checkpoints, proofs, `export` and `verify_export`.
//! Does not: time anything.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{TempLog, append_all, session};
use sha2::{Digest, Sha256};
use sluice_audit::{AuditError, AuditLog, AuditOptions, AuditReader, BreakReason, verify_export};
use sluice_evidence::{MerkleLog, SigningKey, leaf_hash, verify_consistency, verify_inclusion};
use sluice_model::{AuditEvent, RecordingChunk};

fn key(name: &str, seed: u8) -> Arc<SigningKey> {
    Arc::new(SigningKey::from_seed(name, [seed; 32]).expect("key"))
}

async fn open_signed(log: &TempLog, key: &Arc<SigningKey>) -> AuditLog {
    let options = AuditOptions { signing_key: Some(key.clone()), ..AuditOptions::default() };
    AuditLog::open(&log.url, options).await.expect("open")
}

/// A recording chunk record and its payload.
fn chunk(session: &str, n: u32, payload: &[u8]) -> AuditEvent {
    AuditEvent::RecordingChunk(RecordingChunk {
        session_id: session.into(),
        principal: "alice".into(),
        connection: "clinic".into(),
        chunk: n,
        entries: 1,
        last: false,
        payload_sha256: hex::encode(Sha256::digest(payload)),
        payload_bytes: payload.len() as u64,
    })
}

/// 700 records (past two 256-leaf blocks) with two checkpoints and two
/// recording chunks; reopened once in the middle so the tree is restored
/// from stored block roots.
async fn build(log: &TempLog, key: &Arc<SigningKey>) -> (u64, Vec<u64>) {
    let audit = open_signed(log, key).await;
    for s in 0..30 {
        append_all(&audit, session(&format!("s{s}"), "alice", "clinic", 5)).await;
    }
    audit.append_lazy_with_payload(chunk("s0", 0, b"first chunk"), b"first chunk".to_vec());
    let first = audit.checkpoint().await.expect("checkpoint").expect("signed");
    assert!(audit.checkpoint().await.expect("checkpoint").is_none(), "nothing new, nothing signed");
    audit.shutdown().await;
    let audit = open_signed(log, key).await;
    for s in 30..60 {
        append_all(&audit, session(&format!("s{s}"), "alice", "clinic", 5)).await;
    }
    audit.append_lazy_with_payload(chunk("s30", 0, b"second chunk"), b"second chunk".to_vec());
    audit.shutdown().await;
    let reader = AuditReader::open(&log.url).await.expect("reader");
    let latest = reader.latest_checkpoint().await.expect("read").expect("shutdown signed one");
    let chunks = reader
        .search(&sluice_audit::SearchFilter { kind: Some("recording_chunk".into()), ..Default::default() })
        .await
        .expect("search")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert!(first.size < latest.size);
    (latest.size, chunks)
}

/// The leaf hashes of every record, straight from the file.
async fn leaves(log: &TempLog) -> Vec<[u8; 32]> {
    use sqlx::Row;
    let mut conn = log.side_connection().await;
    let rows = sqlx::query("SELECT body FROM audit_records ORDER BY seq").fetch_all(&mut conn).await.expect("rows");
    rows.iter().map(|r| leaf_hash(r.get::<String, _>(0).as_bytes())).collect()
}

fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    let mut tree = MerkleLog::new();
    leaves.iter().for_each(|l| {
        tree.append(*l);
    });
    tree.root()
}

#[tokio::test]
async fn checkpoints_proofs_and_live_verify() {
    let log = TempLog::new();
    let signer = key("node-a", 1);
    let (size, chunks) = build(&log, &signer).await;
    assert_eq!(chunks.len(), 2);
    let leaves = leaves(&log).await;
    assert_eq!(leaves.len() as u64, size);

    let reader = AuditReader::open(&log.url).await.expect("reader").with_checkpoint_key(signer.verifier().clone());
    let report = reader.verify(|_, _| {}).await.expect("verify");
    assert_eq!(report.broken, None, "{report:?}");
    assert_eq!((report.records, report.checkpoints_verified, report.payloads_verified), (size, 2, 2));
    assert_eq!(report.tree_root, hex::encode(root(&leaves)));
    let latest = reader.latest_checkpoint().await.expect("read").expect("checkpoint");
    assert_eq!(latest.root, report.tree_root);
    assert!(latest.note.starts_with(&format!("sluice/{}\n{size}\n", signer.log_id())), "{}", latest.note);

    for (leaf, at) in [(0, size), (255, 300), (256, size), (size - 1, size), (517, 600)] {
        let proof = reader.inclusion_proof(leaf, at).await.expect("proof");
        assert_eq!(proof.leaf_hash, hex::encode(leaves[leaf as usize]));
        let path: Vec<[u8; 32]> = proof.proof.iter().map(|h| hex::decode(h).unwrap().try_into().unwrap()).collect();
        verify_inclusion(&leaves[leaf as usize], leaf, at, &path, &root(&leaves[..at as usize])).expect("verifies");
    }
    for (from, to) in [(1, size), (256, 512), (300, size), (size, size)] {
        let proof = reader.consistency_proof(from, to).await.expect("proof");
        assert_eq!(proof.first_root, hex::encode(root(&leaves[..from as usize])));
        let path: Vec<[u8; 32]> = proof.proof.iter().map(|h| hex::decode(h).unwrap().try_into().unwrap()).collect();
        verify_consistency(from, to, &root(&leaves[..from as usize]), &root(&leaves[..to as usize]), &path)
            .expect("verifies");
    }
    for bad in [reader.inclusion_proof(size, size).await, reader.inclusion_proof(0, size + 1).await] {
        assert!(matches!(bad, Err(AuditError::OutOfRange(_))), "{bad:?}");
    }

    // Another node's key: its checkpoints are not these.
    let other =
        AuditReader::open(&log.url).await.expect("reader").with_checkpoint_key(key("node-b", 2).verifier().clone());
    let broken = other.verify(|_, _| {}).await.expect("verify").broken.expect("rejected");
    assert!(matches!(broken.reason, BreakReason::BadCheckpoint { .. }), "{broken}");
}

#[tokio::test]
async fn a_cut_tail_and_a_deleted_payload_are_named_live_and_on_open() {
    let log = TempLog::new();
    let signer = key("node-a", 1);
    let (size, chunks) = build(&log, &signer).await;
    let mut conn = log.side_connection().await;
    sqlx::query("DELETE FROM audit_payloads WHERE seq = $1").bind(chunks[0] as i64).execute(&mut conn).await.unwrap();
    let reader = AuditReader::open(&log.url).await.expect("reader").with_checkpoint_key(signer.verifier().clone());
    let broken = reader.verify(|_, _| {}).await.expect("verify").broken.expect("broken");
    assert_eq!((broken.seq, broken.reason), (chunks[0], BreakReason::PayloadMissing));

    sqlx::query("DELETE FROM audit_records WHERE seq > $1").bind(size as i64 - 3).execute(&mut conn).await.unwrap();
    let broken = reader.verify(|_, _| {}).await.expect("verify").broken.expect("broken");
    assert_eq!(broken.seq, size - 2, "{broken}");
    assert!(matches!(broken.reason, BreakReason::Truncated { checkpoint_size, .. } if checkpoint_size == size));
    let refused = AuditLog::open(&log.url, AuditOptions::default()).await.expect_err("refused");
    assert!(refused.to_string().contains("were removed"), "{refused}");
}

/// Copies `from` into a fresh folder and lets `tamper` change the copy.
fn tampered(from: &Path, tamper: impl FnOnce(&Path)) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("tempdir");
    for entry in walk(from) {
        let target = copy.path().join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
    tamper(copy.path());
    copy
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

fn edit_lines(dir: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let path = dir.join("records.jsonl");
    let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(str::to_owned).collect();
    edit(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn export_verifies_offline_and_names_every_tampering() {
    let log = TempLog::new();
    let signer = key("node-a", 1);
    let (size, chunks) = build(&log, &signer).await;
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("export");
    let reader = AuditReader::open(&log.url).await.expect("reader");
    let summary = reader.export(&dir, Some(signer.verifier()), |_, _| {}).await.expect("export");
    assert_eq!((summary.records, summary.checkpoints, summary.payloads), (size, 2, 2));
    assert!(reader.export(&dir, None, |_, _| {}).await.is_err(), "a non-empty folder is refused");
    let verifier = signer.verifier();
    let clean = verify_export(&dir, verifier, |_, _| {}).expect("verify");
    assert_eq!((clean.broken, clean.records, clean.checkpoints_verified, clean.payloads_verified), (None, size, 2, 2));

    let check = |tamper: &dyn Fn(&Path)| {
        let copy = tampered(&dir, tamper);
        verify_export(copy.path(), verifier, |_, _| {}).expect("verify runs").broken.expect("tampering is found")
    };
    // One byte of record 100's statement.
    let flipped = check(&|d| edit_lines(d, |l| l[99] = l[99].replacen("SELECT", "SELECt", 1)));
    assert!(matches!(flipped.reason, BreakReason::HashMismatch { .. }) && flipped.seq == 100, "{flipped}");
    let deleted = check(&|d| edit_lines(d, |l| drop(l.remove(49))));
    assert_eq!((deleted.seq, deleted.reason), (50, BreakReason::Missing));
    let swapped = check(&|d| edit_lines(d, |l| l.swap(9, 10)));
    assert_eq!((swapped.seq, swapped.reason), (10, BreakReason::Reordered { found_at_line: 11 }));
    let truncated = check(&|d| edit_lines(d, |l| l.truncate(l.len() - 5)));
    assert!(matches!(truncated.reason, BreakReason::Truncated { .. }) && truncated.seq == size - 4, "{truncated}");
    // A line that is not an export record, and one that is not UTF-8.
    let garbage = check(&|d| edit_lines(d, |l| l[41] = "{\"seq\":42,\"hash\":\"not hex\"}".into()));
    assert!(matches!(garbage.reason, BreakReason::Unreadable { .. }) && garbage.seq == 42, "{garbage}");
    let binary = check(&|d| {
        let path = d.join("records.jsonl");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(59).unwrap().0 + 20;
        bytes[at] = 0xff;
        std::fs::write(&path, bytes).unwrap();
    });
    assert!(matches!(binary.reason, BreakReason::Unreadable { .. }) && binary.seq == 61, "{binary}");
    let bad_checkpoints = tampered(&dir, |d| std::fs::write(d.join("checkpoints.jsonl"), "not json\n").unwrap());
    let refused = verify_export(bad_checkpoints.path(), verifier, |_, _| {}).expect_err("unreadable checkpoints");
    assert!(refused.to_string().contains("checkpoints.jsonl line 1"), "{refused}");
    let chunk_gone = check(&|d| std::fs::remove_file(d.join("payloads").join(chunks[1].to_string())).unwrap());
    assert_eq!((chunk_gone.seq, chunk_gone.reason), (chunks[1], BreakReason::PayloadMissing));
    // Record 5 rewritten with every chain hash after it recomputed: only the
    // signed checkpoint can tell.
    let rewritten = check(&|d| {
        edit_lines(d, |lines| {
            let mut prev = hash_of(&lines[3]);
            for (i, line) in lines.iter_mut().enumerate().skip(4) {
                let body = body_of(line).to_owned();
                let body = if i == 4 { body.replacen("alice", "mallory", 1) } else { body };
                let mut hasher = Sha256::new();
                hasher.update(prev);
                hasher.update(body.as_bytes());
                prev = hasher.finalize().into();
                *line = format!("{{\"seq\":{},\"hash\":\"{}\",\"record\":{body}}}", i + 1, hex::encode(prev));
            }
        })
    });
    assert!(matches!(rewritten.reason, BreakReason::CheckpointMismatch { .. }), "{rewritten}");
    // Checkpoints signed by another key are rejected.
    let other = key("node-a", 9);
    let copy = tampered(&dir, |d| {
        let text = std::fs::read_to_string(d.join("checkpoints.jsonl")).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            let note = value["note"].as_str().unwrap();
            let body = &note[..note.find("\n\n").unwrap() + 1];
            let parsed = sluice_evidence::Checkpoint::parse_and_verify(note, verifier).unwrap();
            assert_eq!(parsed.body().unwrap(), body);
            value["note"] = parsed.sign(&other).unwrap().into();
            out.push_str(&value.to_string());
            out.push('\n');
        }
        std::fs::write(d.join("checkpoints.jsonl"), out).unwrap();
    });
    let rejected = verify_export(copy.path(), verifier, |_, _| {}).unwrap().broken.expect("rejected");
    assert!(
        matches!(&rejected.reason, BreakReason::BadCheckpoint { error, .. } if error.contains("does not verify") || error.contains("no signature")),
        "{rejected}"
    );
}

/// Replaces `from` by `to` in record `seq`'s stored body, as an operator
/// with access to the file could.
async fn edit_body(conn: &mut sqlx::SqliteConnection, seq: u64, from: &str, to: &str) {
    sqlx::query("UPDATE audit_records SET body = replace(body, $1, $2) WHERE seq = $3")
        .bind(from)
        .bind(to)
        .bind(seq as i64)
        .execute(conn)
        .await
        .unwrap();
}

/// A rule for `connection` that keeps everything.
fn rule_for(connection: &str) -> sluice_audit::PruneRule {
    sluice_audit::PruneRule {
        connection: connection.into(),
        payload_days: None,
        statement_days: None,
        index_days: None,
        legal_hold: false,
    }
}

fn body_of(line: &str) -> &str {
    let start = line.find(",\"record\":").unwrap() + ",\"record\":".len();
    &line[start..line.len() - 1]
}

fn hash_of(line: &str) -> [u8; 32] {
    let start = line.find("\"hash\":\"").unwrap() + 8;
    hex::decode(&line[start..start + 64]).unwrap().try_into().unwrap()
}

#[tokio::test]
async fn pruned_payloads_are_gone_and_the_log_still_verifies() {
    use sluice_audit::PruneRule;
    let log = TempLog::new();
    let signer = key("node-a", 1);
    let (_, chunks) = build(&log, &signer).await;
    let reader = AuditReader::open(&log.url).await.expect("reader");
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    let rule = |legal_hold| PruneRule { payload_days: Some(0), legal_hold, ..rule_for("clinic") };
    assert!(reader.prune_plan(&[rule(true)], later).await.expect("plan").is_empty(), "legal hold keeps everything");
    let kept =
        PruneRule { payload_days: Some(30), statement_days: Some(30), index_days: Some(30), ..rule_for("clinic") };
    assert!(reader.prune_plan(&[kept], later).await.expect("plan").is_empty(), "nothing is 30 days old");
    let plans = reader.prune_plan(&[rule(false)], later).await.expect("plan");
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].chunks.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), chunks);
    assert_eq!(plans[0].bytes(), (b"first chunk".len() + b"second chunk".len()) as u64);

    let audit = open_signed(&log, &signer).await;
    let records = audit.prune(plans).await.expect("pruned");
    assert_eq!(records.len(), 1);
    audit.shutdown().await;
    for seq in &chunks {
        assert_eq!(reader.payload(*seq).await.expect("read"), None, "payload {seq} deleted");
    }
    let verifier = signer.verifier().clone();
    let live = AuditReader::open(&log.url).await.expect("reader").with_checkpoint_key(verifier.clone());
    let report = live.verify(|_, _| {}).await.expect("verify");
    assert_eq!(report.broken, None, "{report:?}");
    assert_eq!((report.payloads_pruned, report.payloads_verified, report.checkpoints_verified), (2, 0, 3));
    let out = tempfile::tempdir().expect("tempdir");
    let summary = reader.export(&out.path().join("x"), Some(&verifier), |_, _| {}).await.expect("export");
    assert_eq!(summary.payloads, 0);
    let offline = verify_export(&out.path().join("x"), &verifier, |_, _| {}).expect("verify");
    assert_eq!((offline.broken, offline.payloads_pruned), (None, 2));
    assert!(reader.prune_plan(&[rule(false)], later).await.expect("plan").is_empty(), "nothing left to prune");
}

#[tokio::test]
async fn a_second_writer_on_the_same_file_is_refused_until_the_first_stops() {
    let log = TempLog::new();
    let first = log.open().await;
    let refused = AuditLog::open(&log.url, AuditOptions::default()).await.expect_err("one writer");
    assert!(refused.to_string().contains("another Sluice process is writing this audit log"), "{refused}");
    first.shutdown().await;
    AuditLog::open(&log.url, AuditOptions::default())
        .await
        .expect("the lock went with the first writer")
        .shutdown()
        .await;
}

/// Past one block of the parallel offline verify (8,192 lines): tampering in
/// either thread's half, and across the block boundary, is still named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_exports_verify_in_parallel_and_still_name_the_record() {
    let log = TempLog::new();
    let signer = key("node-a", 1);
    let audit = open_signed(&log, &signer).await;
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let audit = audit.clone();
            tokio::spawn(async move { append_all(&audit, session(&format!("big{t}"), "alice", "clinic", 280)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    audit.checkpoint().await.expect("checkpoint");
    audit.shutdown().await;
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("export");
    let summary = AuditReader::open(&log.url).await.unwrap().export(&dir, None, |_, _| {}).await.expect("export");
    assert!(summary.records > 8_192 + 100, "{summary:?}");
    let verifier = signer.verifier();
    let clean = verify_export(&dir, verifier, |_, _| {}).expect("verify");
    assert_eq!((clean.broken, clean.records, clean.checkpoints_verified), (None, summary.records, 1));
    for victim in [3_000usize, 7_000, 8_192, 8_193, 8_500] {
        let copy = tampered(&dir, |d| edit_lines(d, |l| l[victim - 1] = l[victim - 1].replacen("alice", "alicf", 1)));
        let broken = verify_export(copy.path(), verifier, |_, _| {}).unwrap().broken.expect("found");
        assert_eq!(broken.seq, victim as u64, "{broken}");
        assert!(matches!(broken.reason, BreakReason::HashMismatch { .. }), "{broken}");
    }
    let swapped = tampered(&dir, |d| edit_lines(d, |l| l.swap(8_191, 8_192)));
    let broken = verify_export(swapped.path(), verifier, |_, _| {}).unwrap().broken.expect("found");
    assert_eq!((broken.seq, broken.reason), (8_192, BreakReason::Reordered { found_at_line: 8_193 }));
}

#[tokio::test]
async fn redacted_statements_are_gone_and_the_log_still_verifies() {
    use sluice_audit::PruneRule;
    use sluice_model::REDACTED_STATEMENT;
    let log = TempLog::new();
    let signer = key("node-a", 1);
    let (_, _) = build(&log, &signer).await;
    let reader = AuditReader::open(&log.url).await.expect("reader");
    let rule = PruneRule { statement_days: Some(0), ..rule_for("clinic") };
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    let plans = reader.prune_plan(std::slice::from_ref(&rule), later).await.expect("plan");
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].statements.len(), 300, "60 sessions of 5 requests");
    let redacted_seq = plans[0].statements[7];

    let audit = open_signed(&log, &signer).await;
    audit.prune(plans).await.expect("redacted");
    audit.shutdown().await;
    let requests = reader
        .search(&sluice_audit::SearchFilter { kind: Some("request".into()), ..Default::default() })
        .await
        .expect("search");
    assert!(requests.iter().all(|r| matches!(&r.event, AuditEvent::Request(e) if e.statement == REDACTED_STATEMENT)));
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", log.path.display());
        let file = std::fs::read(&path).unwrap_or_default();
        assert!(!file.windows(15).any(|w| w == b"FROM patients W"), "statement text left in {path}");
    }
    assert!(reader.prune_plan(&[rule], later).await.expect("plan").is_empty(), "nothing left to redact");

    // The tree is unchanged: verify, proofs and a reopened writer all agree.
    let verifier = signer.verifier().clone();
    let live = AuditReader::open(&log.url).await.unwrap().with_checkpoint_key(verifier.clone());
    let report = live.verify(|_, _| {}).await.expect("verify");
    assert_eq!(report.broken, None, "{report:?}");
    assert_eq!(report.checkpoints_verified, 3);
    let latest = reader.latest_checkpoint().await.unwrap().unwrap();
    let proof = reader.inclusion_proof(redacted_seq - 1, latest.size).await.expect("proof");
    let leaf: [u8; 32] = hex::decode(&proof.leaf_hash).unwrap().try_into().unwrap();
    let path: Vec<[u8; 32]> = proof.proof.iter().map(|h| hex::decode(h).unwrap().try_into().unwrap()).collect();
    let root: [u8; 32] = hex::decode(&latest.root).unwrap().try_into().unwrap();
    verify_inclusion(&leaf, redacted_seq - 1, latest.size, &path, &root).expect("the original leaf is still proven");
    let audit = open_signed(&log, &signer).await;
    append_all(&audit, session("after", "alice", "clinic", 1)).await;
    audit.shutdown().await;
    assert_eq!(live.verify(|_, _| {}).await.unwrap().broken, None);
    let out = tempfile::tempdir().unwrap();
    reader.export(&out.path().join("x"), Some(&verifier), |_, _| {}).await.expect("export");
    let offline = verify_export(&out.path().join("x"), &verifier, |_, _| {}).expect("verify");
    assert_eq!((offline.broken, offline.records), (None, report.records + 4));

    // A rewritten body changed again, or a body "redacted" without a
    // retention record, is named.
    let mut conn = log.side_connection().await;
    edit_body(&mut conn, redacted_seq, "127.0.0.1:50000", "10.9.9.9:50000").await;
    let broken = live.verify(|_, _| {}).await.unwrap().broken.expect("found");
    assert_eq!(broken.seq, redacted_seq, "{broken}");
    assert!(matches!(broken.reason, BreakReason::RedactionUnauthorised { .. }), "{broken}");
    edit_body(&mut conn, redacted_seq, "10.9.9.9:50000", "127.0.0.1:50000").await;
    assert_eq!(live.verify(|_, _| {}).await.unwrap().broken, None, "restored");
    // An outcome edited, with its original leaf planted as if redacted.
    use sqlx::Row;
    let victim = redacted_seq + 1;
    let body: String = sqlx::query("SELECT body FROM audit_records WHERE seq = $1")
        .bind(victim as i64)
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    sqlx::query("INSERT INTO audit_redactions (seq, leaf) VALUES ($1, $2)")
        .bind(victim as i64)
        .bind(hex::encode(leaf_hash(body.as_bytes())))
        .execute(&mut conn)
        .await
        .unwrap();
    edit_body(&mut conn, victim, "\"rows\":1", "\"rows\":0").await;
    let broken = live.verify(|_, _| {}).await.unwrap().broken.expect("found");
    assert_eq!(broken.seq, victim, "{broken}");
    assert!(matches!(broken.reason, BreakReason::RedactionUnauthorised { .. }), "{broken}");
}

/// `index_days`: every record of the connection is rewritten to its kind
/// and connection (a chunk's payload with it), another connection's records
/// stay whole, each keeps the leaf of its first body (even one whose
/// statement was redacted before), and the log still verifies live, by
/// proof and offline; an expired body changed again is named.
#[tokio::test]
async fn expired_records_keep_only_kind_and_connection_and_the_log_still_verifies() {
    use sluice_audit::{PruneRule, SearchFilter};
    let log = TempLog::new();
    let signer = key("node-a", 1);
    let (_, chunks) = build(&log, &signer).await;
    let audit = open_signed(&log, &signer).await;
    append_all(&audit, session("lab-1", "bob", "lab", 5)).await;
    audit.shutdown().await;
    let original = leaves(&log).await;
    let reader = AuditReader::open(&log.url).await.expect("reader");
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    let redact = PruneRule { statement_days: Some(0), ..rule_for("clinic") };
    let expire = PruneRule { index_days: Some(0), ..rule_for("clinic") };
    let on_hold = PruneRule { legal_hold: true, ..expire.clone() };
    assert!(reader.prune_plan(std::slice::from_ref(&on_hold), later).await.unwrap().is_empty(), "legal hold");

    // Statement text first, then the whole record, as the days pass.
    let audit = open_signed(&log, &signer).await;
    audit.prune(reader.prune_plan(std::slice::from_ref(&redact), later).await.unwrap()).await.expect("redacted");
    let plans = reader.prune_plan(std::slice::from_ref(&expire), later).await.expect("plan");
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].reason, "retention (index_days = 0)");
    assert_eq!(plans[0].expired.len(), 60 * 12 + 2, "every clinic record but the retention record");
    let written = audit.prune(plans).await.expect("expired");
    assert_eq!(written.len(), 1);
    audit.shutdown().await;
    assert!(reader.prune_plan(std::slice::from_ref(&expire), later).await.unwrap().is_empty(), "nothing left");

    let search = |filter: SearchFilter| {
        let reader = &reader;
        async move { reader.search(&filter).await.expect("search") }
    };
    let expired = search(SearchFilter { kind: Some("expired".into()), ..Default::default() }).await;
    assert_eq!(expired.len(), 60 * 12 + 2);
    for record in &expired {
        let AuditEvent::Expired(e) = &record.event else { panic!("{record:?}") };
        assert_eq!(e.connection, "clinic");
        assert!(["session_open", "request", "outcome", "session_close", "recording_chunk"].contains(&e.kind.as_str()));
    }
    assert!(search(SearchFilter { principal: Some("alice".into()), ..Default::default() }).await.is_empty());
    assert_eq!(search(SearchFilter { principal: Some("bob".into()), ..Default::default() }).await.len(), 12);
    for seq in &chunks {
        assert_eq!(reader.payload(*seq).await.expect("read"), None, "chunk {seq}'s payload went with it");
    }
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", log.path.display());
        let file = std::fs::read(&path).unwrap_or_default();
        // Bodies and payloads are zeroed (index pages may keep stale key
        // fragments in unused space: README, Retention).
        for gone in [&b"\"alice\""[..], b"\"s17\"", b"first chunk"] {
            assert!(!file.windows(gone.len()).any(|w| w == gone), "{} left in {path}", String::from_utf8_lossy(gone));
        }
    }

    let verifier = signer.verifier().clone();
    let live = AuditReader::open(&log.url).await.unwrap().with_checkpoint_key(verifier.clone());
    let report = live.verify(|_, _| {}).await.expect("verify");
    assert_eq!(report.broken, None, "{report:?}");
    assert_eq!(report.checkpoints_verified, 4);
    let latest = reader.latest_checkpoint().await.unwrap().unwrap();
    let root: [u8; 32] = hex::decode(&latest.root).unwrap().try_into().unwrap();
    for seq in [1u64, 8, chunks[0]] {
        let proof = reader.inclusion_proof(seq - 1, latest.size).await.expect("proof");
        assert_eq!(proof.leaf_hash, hex::encode(original[seq as usize - 1]), "record {seq} keeps its first leaf");
        let path: Vec<[u8; 32]> = proof.proof.iter().map(|h| hex::decode(h).unwrap().try_into().unwrap()).collect();
        verify_inclusion(&original[seq as usize - 1], seq - 1, latest.size, &path, &root).expect("proven");
    }
    let out = tempfile::tempdir().unwrap();
    reader.export(&out.path().join("x"), Some(&verifier), |_, _| {}).await.expect("export");
    let offline = verify_export(&out.path().join("x"), &verifier, |_, _| {}).expect("verify");
    assert_eq!((offline.broken, offline.records), (None, report.records));

    // An expired body moved to another connection is not what retention wrote.
    let victim = expired[10].seq;
    edit_body(&mut log.side_connection().await, victim, "\"clinic\"", "\"lab\"").await;
    let broken = live.verify(|_, _| {}).await.unwrap().broken.expect("found");
    assert_eq!(broken.seq, victim, "{broken}");
    assert!(matches!(broken.reason, BreakReason::RedactionUnauthorised { .. } | BreakReason::IndexMismatch { .. }));
}
