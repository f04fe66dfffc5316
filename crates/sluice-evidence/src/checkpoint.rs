//! Signed checkpoints: a tree head ([`Checkpoint`]: origin, size, root, time) written as a C2SP
//! tlog-checkpoint body and signed, parsed and verified as a C2SP signed note.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::keys::{SigningKey, VerifierKey};
use crate::merkle::Hash;

/// The em dash (U+2014) and space that start every signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Signed notes carry at most this many signatures.
const MAX_SIGNATURES: usize = 100;
/// The extension line this crate writes and requires.
const TIME_PREFIX: &str = "time ";

/// Why a checkpoint could not be signed, or a note is not a checkpoint signed by the expected key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// An origin that cannot be a checkpoint's first line.
    #[error("checkpoint origin {0:?} is not allowed: it must be non-empty, one line, with no control characters")]
    BadOrigin(String),
    /// Text that is not a signed note.
    #[error("malformed note: {0}")]
    MalformedNote(String),
    /// A signed note whose text is not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// A note with no signature line by the expected key (name and key hash).
    #[error("the note has no signature by key {name} (key hash {key_hash})")]
    NotSigned { name: String, key_hash: String },
    /// A signature line by the expected key that does not verify.
    #[error("the signature by key {name} does not verify: the note was changed after it was signed")]
    BadSignature { name: String },
}

/// A signed statement of the log's state: `size` leaves with root `root`, at `time`.
///
/// Its note text (the signed part) is
///
/// ```text
/// <origin>
/// <size, decimal>
/// <base64(root)>
/// time <RFC 3339 UTC, as many fractional digits as needed, Z>
/// ```
///
/// then a blank line and one line per signature, `— <key name> <base64(key hash ‖ signature)>`,
/// where the 64-byte Ed25519 signature is over the text including its final newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log: one line, e.g. `sluice/<log id>`.
    pub origin: String,
    /// The tree size: how many leaves the root covers.
    pub size: u64,
    /// The RFC 9162 root of the first `size` leaves.
    pub root: Hash,
    /// When the checkpoint was made.
    pub time: DateTime<Utc>,
}

impl Checkpoint {
    /// The note text that is signed (see the type's docs).
    pub fn body(&self) -> Result<String, CheckpointError> {
        if self.origin.is_empty() || self.origin.chars().any(char::is_control) {
            return Err(CheckpointError::BadOrigin(self.origin.clone()));
        }
        Ok(format!(
            "{}\n{}\n{}\n{TIME_PREFIX}{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root),
            self.time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        ))
    }

    /// The signed note: the body, a blank line and the signature line of `key`.
    pub fn sign(&self, key: &SigningKey) -> Result<String, CheckpointError> {
        let body = self.body()?;
        let signature = key.signature_line(&body);
        Ok(format!("{body}\n{signature}"))
    }

    /// Reads a signed checkpoint note and returns its checkpoint if `key` signed it.
    ///
    /// Signatures by other keys are allowed (cosignatures) and ignored. Extension lines other than
    /// `time` are covered by the signature but not returned.
    pub fn parse_and_verify(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
        let text = verify_note(note, key)?;
        parse_body(text)
    }
}

/// Checks that `note` is a signed note with a valid signature by `key`, and returns its text.
fn verify_note<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, CheckpointError> {
    let malformed = |reason: &str| CheckpointError::MalformedNote(reason.to_owned());
    let split = note.find("\n\n").ok_or_else(|| malformed("no blank line before the signatures"))?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(malformed("the text has a control character other than newline"));
    }
    let lines = signatures.strip_suffix('\n').ok_or_else(|| malformed("the note does not end with a newline"))?;
    if lines.is_empty() {
        return Err(malformed("no signature lines"));
    }
    // Every line is checked before the answer, so a valid signature does not excuse a malformed note.
    let (mut by_key, mut verified) = (false, false);
    for (n, line) in lines.split('\n').enumerate() {
        if n == MAX_SIGNATURES {
            return Err(malformed("more than 100 signatures"));
        }
        let bad_line =
            || CheckpointError::MalformedNote(format!("signature line {} is not '— <name> <base64>'", n + 1));
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(bad_line)?;
        let (name, encoded) = rest.split_once(' ').ok_or_else(bad_line)?;
        crate::keys::check_name(name).map_err(|_| bad_line())?;
        let bytes = BASE64.decode(encoded).map_err(|_| bad_line())?;
        if bytes.len() < 5 {
            return Err(bad_line());
        }
        if name != key.name() || bytes[..4] != key.key_hash() {
            continue;
        }
        by_key = true;
        if let Ok(signature) = <&[u8; 64]>::try_from(&bytes[4..]) {
            verified |= key.verifies(text.as_bytes(), signature);
        }
    }
    if verified {
        return Ok(text);
    }
    if by_key {
        return Err(CheckpointError::BadSignature { name: key.name().to_owned() });
    }
    Err(CheckpointError::NotSigned { name: key.name().to_owned(), key_hash: hex::encode(key.key_hash()) })
}

/// Parses a checkpoint's note text (which ends with a newline and has no empty line but maybe the first).
fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
    let malformed = |reason: String| CheckpointError::MalformedCheckpoint(reason);
    let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
    let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| malformed("the origin line is empty".into()))?;
    let size_line = lines.next().ok_or_else(|| malformed("no tree size line".into()))?;
    let canonical = size_line.bytes().all(|b| b.is_ascii_digit()) && (size_line == "0" || !size_line.starts_with('0'));
    let size =
        size_line.parse::<u64>().ok().filter(|_| canonical).ok_or_else(|| {
            malformed(format!("tree size {size_line:?} is not a decimal number without leading zeros"))
        })?;
    let root_line = lines.next().ok_or_else(|| malformed("no root hash line".into()))?;
    let root: Hash = BASE64
        .decode(root_line)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| malformed(format!("root hash {root_line:?} is not 32 bytes in base64")))?;
    let mut time = None;
    for line in lines {
        let Some(value) = line.strip_prefix(TIME_PREFIX) else { continue };
        if time.is_some() {
            return Err(malformed("more than one time line".into()));
        }
        let parsed = DateTime::parse_from_rfc3339(value)
            .map_err(|e| malformed(format!("time {value:?} is not RFC 3339: {e}")))?;
        time = Some(parsed.with_timezone(&Utc));
    }
    let time = time.ok_or_else(|| malformed("no time line".into()))?;
    Ok(Checkpoint { origin: origin.to_owned(), size, root, time })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{MerkleLog, leaf_hash};

    fn key(name: &str, byte: u8) -> SigningKey {
        SigningKey::from_seed(name, [byte; 32]).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        let mut log = MerkleLog::new();
        for i in 0..11u8 {
            log.append(leaf_hash(&[i]));
        }
        Checkpoint {
            origin: "sluice/test-log".to_owned(),
            size: log.size(),
            root: log.root(),
            time: DateTime::parse_from_rfc3339("2026-11-26T01:02:03.000250Z").unwrap().with_timezone(&Utc),
        }
    }

    #[test]
    fn body_has_the_checkpoint_lines() {
        let cp = checkpoint();
        let body = cp.body().unwrap();
        let expected = format!("sluice/test-log\n11\n{}\ntime 2026-11-26T01:02:03.000250Z\n", BASE64.encode(cp.root));
        assert_eq!(body, expected);
        let whole_seconds = Checkpoint { time: DateTime::UNIX_EPOCH, ..checkpoint() };
        assert!(whole_seconds.body().unwrap().ends_with("\ntime 1970-01-01T00:00:00Z\n"));
    }

    #[test]
    fn signed_checkpoint_round_trips() {
        let k = key("sluice.example/node-1", 1);
        let cp = checkpoint();
        let note = cp.sign(&k).unwrap();
        let (body, signature) = note.split_once("\n\n").unwrap();
        assert_eq!(format!("{body}\n"), cp.body().unwrap());
        assert!(signature.starts_with("\u{2014} sluice.example/node-1 "), "{signature}");
        let raw = BASE64.decode(signature.trim_end().rsplit(' ').next().unwrap()).unwrap();
        assert_eq!(raw.len(), 68);
        assert_eq!(raw[..4], k.verifier().key_hash());
        assert_eq!(Checkpoint::parse_and_verify(&note, k.verifier()).unwrap(), cp);
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_rejected() {
        let (ours, theirs) = (key("node", 1), key("node", 2));
        let note = checkpoint().sign(&theirs).unwrap();
        let err = Checkpoint::parse_and_verify(&note, ours.verifier()).unwrap_err();
        assert!(matches!(err, CheckpointError::NotSigned { .. }), "{err}");
        let stranger = key("someone-else", 1);
        let note = checkpoint().sign(&stranger).unwrap();
        let err = Checkpoint::parse_and_verify(&note, ours.verifier()).unwrap_err();
        assert_eq!(
            err,
            CheckpointError::NotSigned { name: "node".into(), key_hash: hex::encode(ours.verifier().key_hash()) }
        );
    }

    #[test]
    fn a_signature_line_forged_with_our_key_hash_is_rejected() {
        let (ours, theirs) = (key("node", 1), key("node", 2));
        let note = checkpoint().sign(&theirs).unwrap();
        let (body, line) = note.split_once("\n\n").unwrap();
        let mut raw = BASE64.decode(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
        raw[..4].copy_from_slice(&ours.verifier().key_hash());
        let forged = format!("{body}\n\n\u{2014} node {}\n", BASE64.encode(&raw));
        let err = Checkpoint::parse_and_verify(&forged, ours.verifier()).unwrap_err();
        assert_eq!(err, CheckpointError::BadSignature { name: "node".into() });
    }

    #[test]
    fn a_tampered_body_is_rejected() {
        let k = key("node", 1);
        let note = checkpoint().sign(&k).unwrap();
        let tampered = [
            note.replacen("\n11\n", "\n12\n", 1),
            note.replacen("\n11\n", "\n10\n", 1),
            note.replacen("sluice/test-log", "sluice/test-loh", 1),
            note.replacen("03.000250Z", "03.000251Z", 1),
            note.replacen("\n\n", "\nextra line\n\n", 1),
        ];
        for bad in tampered {
            assert_ne!(bad, note);
            let err = Checkpoint::parse_and_verify(&bad, k.verifier()).unwrap_err();
            assert_eq!(err, CheckpointError::BadSignature { name: "node".into() }, "{bad}");
        }
        let mut root = checkpoint().root;
        root[0] ^= 1;
        let other_root = note.replacen(&BASE64.encode(checkpoint().root), &BASE64.encode(root), 1);
        assert!(matches!(
            Checkpoint::parse_and_verify(&other_root, k.verifier()),
            Err(CheckpointError::BadSignature { .. })
        ));
    }

    #[test]
    fn cosignatures_by_other_keys_are_ignored() {
        let (ours, witness) = (key("node", 1), key("witness", 9));
        let cp = checkpoint();
        let body = cp.body().unwrap();
        let note = format!("{body}\n{}{}", witness.signature_line(&body), ours.signature_line(&body));
        assert_eq!(Checkpoint::parse_and_verify(&note, ours.verifier()).unwrap(), cp);
        assert_eq!(Checkpoint::parse_and_verify(&note, witness.verifier()).unwrap(), cp);
    }

    #[test]
    fn malformed_notes_are_rejected() {
        let k = key("node", 1);
        let note = checkpoint().sign(&k).unwrap();
        let cases = [
            note.replacen("\n\n", "\n", 1),
            note.trim_end().to_owned(),
            format!("{}\n\n", checkpoint().body().unwrap()),
            note.replacen('\u{2014}', "-", 1),
            note.replacen("\u{2014} node ", "\u{2014} node", 1),
            format!("{note}\u{2014} other !!!\n"),
            note.replacen("sluice/test-log", "sluice/test\u{7}log", 1),
        ];
        for bad in cases {
            let err = Checkpoint::parse_and_verify(&bad, k.verifier()).unwrap_err();
            assert!(matches!(err, CheckpointError::MalformedNote(_)), "{bad:?}: {err}");
        }
        let many = format!("{note}{}", "\u{2014} other AAAAAAAA\n".repeat(MAX_SIGNATURES));
        assert!(matches!(Checkpoint::parse_and_verify(&many, k.verifier()), Err(CheckpointError::MalformedNote(_))));
    }

    #[test]
    fn signed_notes_that_are_not_checkpoints_are_rejected() {
        let k = key("node", 1);
        let root = BASE64.encode([7u8; 32]);
        let bodies = [
            format!("origin\n011\n{root}\ntime 2026-11-26T00:00:00Z\n"),
            format!("origin\n-1\n{root}\ntime 2026-11-26T00:00:00Z\n"),
            format!("origin\n18446744073709551616\n{root}\ntime 2026-11-26T00:00:00Z\n"),
            "origin\n11\nAAAA\ntime 2026-11-26T00:00:00Z\n".to_owned(),
            format!("origin\n11\n{root}\n"),
            format!("origin\n11\n{root}\ntime yesterday\n"),
            format!("origin\n11\n{root}\ntime 2026-11-26T00:00:00Z\ntime 2026-11-26T00:00:00Z\n"),
            "origin\n11\n".to_owned(),
        ];
        for body in bodies {
            let note = format!("{body}\n{}", k.signature_line(&body));
            let err = Checkpoint::parse_and_verify(&note, k.verifier()).unwrap_err();
            assert!(matches!(err, CheckpointError::MalformedCheckpoint(_)), "{body:?}: {err}");
        }
        let body = format!("origin\n0\n{root}\nother extension\ntime 2026-11-26T01:00:00+01:00\n");
        let note = format!("{body}\n{}", k.signature_line(&body));
        let cp = Checkpoint::parse_and_verify(&note, k.verifier()).unwrap();
        assert_eq!((cp.size, cp.time), (0, DateTime::parse_from_rfc3339("2026-11-26T00:00:00Z").unwrap().to_utc()));
    }

    #[test]
    fn bad_origins_cannot_be_signed() {
        let k = key("node", 1);
        for origin in ["", "two\nlines", "tab\there"] {
            let cp = Checkpoint { origin: origin.to_owned(), ..checkpoint() };
            assert_eq!(cp.sign(&k).unwrap_err(), CheckpointError::BadOrigin(origin.to_owned()));
        }
    }

    #[test]
    fn matches_the_go_sumdb_note_test_vector() {
        // From golang.org/x/mod/sumdb/note's tests: the same key, text and (deterministic) signature.
        let private = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let text =
            "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let signature = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let signer = SigningKey::from_key_file(private).unwrap();
        assert_eq!(signer.verifier().to_string(), vkey);
        assert_eq!(signer.signature_line(text), signature);
        let verifier = VerifierKey::parse(vkey).unwrap();
        assert_eq!(verify_note(&format!("{text}\n{signature}"), &verifier).unwrap(), text);
    }
}
