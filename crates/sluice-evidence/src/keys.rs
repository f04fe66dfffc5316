//! Ed25519 checkpoint keys in the C2SP signed-note encodings: [`SigningKey`] (the private key file
//! text), [`VerifierKey`] (the public `vkey` text), their 4-byte key hash and the node's log id.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use rand::TryRngCore as _;
use sha2::{Digest, Sha256};

/// The signed-note algorithm byte for Ed25519.
const ALG_ED25519: u8 = 0x01;
/// How a private key file starts (the encoding of `golang.org/x/mod/sumdb/note`).
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// Why a key could not be made, read or named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A key name that signed notes do not allow.
    #[error("key name {0:?} is not allowed: it must be non-empty, with no whitespace and no '+'")]
    BadName(String),
    /// Key text that does not have the expected shape.
    #[error("malformed {kind} key: {reason}")]
    Malformed { kind: &'static str, reason: &'static str },
    /// Key text whose key hash does not match its name and key.
    #[error("{kind} key {name}: key hash {found} does not match the key (expected {expected})")]
    HashMismatch { kind: &'static str, name: String, found: String, expected: String },
    /// The operating system's random number generator failed.
    #[error("cannot read the OS random number generator: {0}")]
    Rng(String),
}

/// A private Ed25519 key with its signed-note key name.
///
/// Its key file text is one line, as `golang.org/x/mod/sumdb/note` writes private keys:
///
/// ```text
/// PRIVATE+KEY+<name>+<8 hex digits: key hash>+<base64(0x01 ‖ 32-byte Ed25519 seed)>
/// ```
///
/// Keep it secret (mode 0600), away from the audit database.
#[derive(Clone)]
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    verifier: VerifierKey,
}

impl SigningKey {
    /// A new key named `name`, from 32 bytes of the OS random number generator.
    pub fn generate(name: &str) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.try_fill_bytes(&mut seed).map_err(|e| KeyError::Rng(e.to_string()))?;
        SigningKey::from_seed(name, seed)
    }

    /// The key named `name` with this Ed25519 seed (the 32-byte private key of RFC 8032).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        check_name(name)?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let verifier = VerifierKey::new(name.to_owned(), key.verifying_key());
        Ok(SigningKey { key, verifier })
    }

    /// Reads the key file text (see the type's docs); surrounding whitespace is ignored.
    pub fn from_key_file(text: &str) -> Result<Self, KeyError> {
        const KIND: &str = "private";
        let rest = text
            .trim()
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(KeyError::Malformed { kind: KIND, reason: "it does not start with PRIVATE+KEY+" })?;
        let (name, hash, key) = split_key_text(rest, KIND)?;
        let seed: [u8; 32] = decode_key(key, KIND)?;
        let signing = SigningKey::from_seed(name, seed)?;
        check_hash(KIND, name, hash, signing.verifier.key_hash)?;
        Ok(signing)
    }

    /// The key file text (see the type's docs), ending in a newline.
    pub fn to_key_file(&self) -> String {
        let mut bytes = vec![ALG_ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "{PRIVATE_PREFIX}{}+{}+{}\n",
            self.verifier.name,
            hex::encode(self.verifier.key_hash),
            BASE64.encode(&bytes)
        )
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    /// The public half, to verify what this key signs.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// The log id of the node holding this key: see [`VerifierKey::log_id`].
    pub fn log_id(&self) -> String {
        self.verifier.log_id()
    }

    /// The signature line `— <name> <base64(key hash ‖ signature)>` over a note's text.
    pub(crate) fn signature_line(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut bytes = self.verifier.key_hash.to_vec();
        bytes.extend_from_slice(&signature.to_bytes());
        format!("\u{2014} {} {}\n", self.verifier.name, BASE64.encode(&bytes))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("verifier", &self.verifier).finish_non_exhaustive()
    }
}

/// A public Ed25519 key with its signed-note name, in the C2SP `vkey` text:
///
/// ```text
/// <name>+<8 hex digits: key hash>+<base64(0x01 ‖ 32-byte public key)>
/// ```
///
/// where the key hash is the first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_hash: [u8; 4],
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    fn new(name: String, key: ed25519_dalek::VerifyingKey) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([b'\n', ALG_ED25519]);
        hasher.update(key.as_bytes());
        let digest = hasher.finalize();
        let key_hash = [digest[0], digest[1], digest[2], digest[3]];
        VerifierKey { name, key_hash, key }
    }

    /// Reads the `vkey` text (see the type's docs); surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        const KIND: &str = "public";
        let (name, hash, key) = split_key_text(text.trim(), KIND)?;
        check_name(name)?;
        let bytes: [u8; 32] = decode_key(key, KIND)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError::Malformed { kind: KIND, reason: "the key is not an Ed25519 point" })?;
        let verifier = VerifierKey::new(name.to_owned(), key);
        check_hash(KIND, name, hash, verifier.key_hash)?;
        Ok(verifier)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key hash that signature lines carry.
    pub fn key_hash(&self) -> [u8; 4] {
        self.key_hash
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The log id of the node holding this key: lowercase hex of SHA-256 of the 32-byte public key.
    pub fn log_id(&self) -> String {
        hex::encode(Sha256::digest(self.key.as_bytes()))
    }

    /// Whether `signature` (64 bytes) is this key's Ed25519 signature over `message` (RFC 8032, with
    /// the strict checks that reject malleable signatures and weak keys).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Display for VerifierKey {
    /// The `vkey` text, without a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = vec![ALG_ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, hex::encode(self.key_hash), BASE64.encode(&bytes))
    }
}

/// Signed-note key names: non-empty, no Unicode whitespace, no `+`.
pub(crate) fn check_name(name: &str) -> Result<(), KeyError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+' || c.is_control()) {
        return Err(KeyError::BadName(name.to_owned()));
    }
    Ok(())
}

/// Splits `<name>+<hash>+<key>`.
fn split_key_text<'a>(text: &'a str, kind: &'static str) -> Result<(&'a str, &'a str, &'a str), KeyError> {
    // Names and hashes have no '+'; base64 keys may.
    let mut parts = text.splitn(3, '+');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(hash), Some(key)) => Ok((name, hash, key)),
        _ => Err(KeyError::Malformed { kind, reason: "it is not <name>+<key hash>+<key>" }),
    }
}

/// Decodes `base64(0x01 ‖ 32 bytes)`.
fn decode_key(text: &str, kind: &'static str) -> Result<[u8; 32], KeyError> {
    let bytes = BASE64.decode(text).map_err(|_| KeyError::Malformed { kind, reason: "the key is not base64" })?;
    match bytes.split_first() {
        Some((&ALG_ED25519, key)) => {
            key.try_into().map_err(|_| KeyError::Malformed { kind, reason: "an Ed25519 key is 32 bytes" })
        }
        _ => Err(KeyError::Malformed { kind, reason: "the key is not Ed25519 (algorithm byte 0x01)" }),
    }
}

fn check_hash(kind: &'static str, name: &str, found: &str, expected: [u8; 4]) -> Result<(), KeyError> {
    let expected = hex::encode(expected);
    if found != expected {
        return Err(KeyError::HashMismatch { kind, name: name.to_owned(), found: found.to_owned(), expected });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, byte: u8) -> SigningKey {
        SigningKey::from_seed(name, [byte; 32]).unwrap()
    }

    #[test]
    fn generated_keys_differ_and_round_trip_through_the_key_file() {
        let a = SigningKey::generate("sluice.example/audit").unwrap();
        let b = SigningKey::generate("sluice.example/audit").unwrap();
        assert_ne!(a.verifier(), b.verifier());
        let text = a.to_key_file();
        assert!(text.starts_with("PRIVATE+KEY+sluice.example/audit+") && text.ends_with('\n'), "{text}");
        let back = SigningKey::from_key_file(&text).unwrap();
        assert_eq!(back.verifier(), a.verifier());
        assert_eq!(back.name(), "sluice.example/audit");
        assert_eq!(back.to_key_file(), text);
    }

    #[test]
    fn vkey_round_trips_and_has_the_c2sp_shape() {
        let k = key("log.example", 7);
        let vkey = k.verifier().to_string();
        let parts: Vec<&str> = vkey.split('+').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "log.example");
        assert_eq!(parts[1], hex::encode(k.verifier().key_hash()));
        let decoded = BASE64.decode(parts[2]).unwrap();
        assert_eq!(decoded[0], 0x01);
        assert_eq!(&decoded[1..], &k.verifier().public_key());
        assert_eq!(&VerifierKey::parse(&format!("  {vkey}\n")).unwrap(), k.verifier());
    }

    #[test]
    fn key_hash_is_sha256_of_name_newline_alg_and_key() {
        let k = key("n", 1);
        let mut bytes = b"n\n\x01".to_vec();
        bytes.extend_from_slice(&k.verifier().public_key());
        assert_eq!(k.verifier().key_hash(), Sha256::digest(&bytes)[..4]);
    }

    #[test]
    fn log_id_is_hex_sha256_of_the_public_key() {
        let k = key("n", 2);
        let id = k.log_id();
        assert_eq!(id, hex::encode(Sha256::digest(k.verifier().public_key())));
        assert_eq!(id.len(), 64);
        assert_ne!(id, key("n", 3).log_id());
        assert_eq!(id, key("other-name", 2).log_id(), "the log id depends on the key only");
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "a b", "a+b", "a\tb", "a\u{3000}b"] {
            assert_eq!(SigningKey::from_seed(name, [0; 32]).unwrap_err(), KeyError::BadName(name.to_owned()));
        }
    }

    #[test]
    fn malformed_and_mismatched_key_texts_are_refused() {
        let k = key("log", 4);
        let vkey = k.verifier().to_string();
        let private = k.to_key_file();
        assert!(matches!(VerifierKey::parse("log+abcd"), Err(KeyError::Malformed { .. })));
        assert!(matches!(VerifierKey::parse("log+abcd+!!!"), Err(KeyError::Malformed { .. })));
        let renamed = vkey.replacen("log+", "gol+", 1);
        assert!(matches!(VerifierKey::parse(&renamed), Err(KeyError::HashMismatch { .. })));
        let short = format!("log+{}+{}", hex::encode(k.verifier().key_hash()), BASE64.encode([1u8; 20]));
        assert!(matches!(VerifierKey::parse(&short), Err(KeyError::Malformed { .. })));
        let other_alg = format!("log+{}+{}", hex::encode(k.verifier().key_hash()), BASE64.encode([2u8; 33]));
        assert!(matches!(VerifierKey::parse(&other_alg), Err(KeyError::Malformed { .. })));
        assert!(matches!(SigningKey::from_key_file(&vkey), Err(KeyError::Malformed { .. })));
        let bad_hash = private.replacen(&hex::encode(k.verifier().key_hash()), "00000000", 1);
        let err = SigningKey::from_key_file(&bad_hash).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn debug_does_not_print_the_private_key() {
        let k = key("log", 5);
        let debug = format!("{k:?}");
        assert!(!debug.contains(&hex::encode([5u8; 32])), "{debug}");
        assert!(!debug.contains(&BASE64.encode([5u8; 32])), "{debug}");
        assert!(debug.contains("SigningKey"), "{debug}");
    }
}
