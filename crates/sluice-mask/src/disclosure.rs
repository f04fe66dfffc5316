//! Accounting of disclosures: keyed pseudonyms of the patient identifiers
//! a request returned, so the audit log can answer "who received this
//! patient's data, and when" without holding a single clear identifier.
//!
//! Owns: which classes identify a patient ([`SUBJECT_CLASSES`]: MRN, SSN,
//! NAME), how their values are normalised so that spellings of one value
//! meet, the keyed pseudonym ([`DisclosureKey`]), and the per-request set
//! ([`Subjects`]) with its cap.
//! Does not: decide which columns hold these classes (column rules do), or
//! read protocol values (the adapter hands over text).
//!
//! A pseudonym is the first 16 bytes, as 32 lowercase hex digits, of
//! `HMAC-SHA256(key, "sluice-disclosure-v1\0" ‖ CLASS ‖ "\0" ‖ normalised)`.
//! The domain prefix keeps these apart from the `[NAME:…]` tokens the
//! `pseudonym` masking strategy writes with the same key: a masked result
//! never shows an accounting pseudonym. Normalisation:
//! - MRN, SSN: letters and digits only, upper-cased (`123-45-6789` and
//!   `123 45 6789` meet; `mrn0100001` and `MRN0100001` meet);
//! - NAME: lower-cased, split into words at anything not a letter or digit,
//!   words sorted, joined with one space (`Ava  Okafor`, `OKAFOR, Ava` and
//!   a row's `first_name` + `last_name` meet).

use crate::PhiClass;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

/// The classes whose values identify a patient for the accounting.
pub const SUBJECT_CLASSES: [PhiClass; 3] = [PhiClass::Mrn, PhiClass::Ssn, PhiClass::Name];

/// Whether values of `class` are accounted for.
pub fn is_subject_class(class: PhiClass) -> bool {
    SUBJECT_CLASSES.contains(&class)
}

const DOMAIN: &[u8] = b"sluice-disclosure-v1\0";

/// A pseudonym: the first 16 bytes of the HMAC.
type Pseudonym = [u8; 16];

/// The normalised form of a value of `class` (empty when nothing is left).
pub fn normalise(class: PhiClass, value: &str) -> String {
    match class {
        PhiClass::Name => {
            let lower = value.to_lowercase();
            let mut words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
            words.sort_unstable();
            words.join(" ")
        }
        _ => value.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect(),
    }
}

/// The HMAC key for accounting pseudonyms (the `[masking]` pseudonym key).
#[derive(Clone)]
pub struct DisclosureKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for DisclosureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret.
        f.write_str("DisclosureKey(<set>)")
    }
}

impl DisclosureKey {
    pub fn new(key: &[u8]) -> DisclosureKey {
        DisclosureKey { key: key.to_vec() }
    }

    /// The pseudonym of a value of `class` as 32 hex digits; `None` when
    /// the value normalises to nothing.
    pub fn pseudonym(&self, class: PhiClass, value: &str) -> Option<String> {
        self.digest(class, &normalise(class, value)).map(|p| hex(&p))
    }

    fn digest(&self, class: PhiClass, normalised: &str) -> Option<Pseudonym> {
        if normalised.is_empty() {
            return None;
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(DOMAIN);
        mac.update(class.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(normalised.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Some(out)
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The pseudonyms of the patient identifiers one request returned, each
/// once. Holds at most [`Subjects::CAP`]; values read past the cap are
/// counted in [`Subjects::omitted`], not kept.
#[derive(Debug, Clone)]
pub struct Subjects {
    key: Arc<DisclosureKey>,
    seen: BTreeMap<PhiClass, BTreeSet<Pseudonym>>,
    len: usize,
    omitted: u64,
    /// Names of the row being read, joined at the row's end.
    row_names: Vec<String>,
}

impl Subjects {
    /// Distinct pseudonyms kept per request.
    pub const CAP: usize = 10_000;

    pub fn new(key: Arc<DisclosureKey>) -> Subjects {
        Subjects { key, seen: BTreeMap::new(), len: 0, omitted: 0, row_names: Vec::new() }
    }

    /// One value of a subject-class column of the current row. A NAME is
    /// kept alone and, at [`Subjects::end_row`], joined with the row's
    /// other NAME values (a `first_name` and a `last_name` make one name).
    pub fn add(&mut self, class: PhiClass, value: &str) {
        if !is_subject_class(class) {
            return;
        }
        let normalised = normalise(class, value);
        if class == PhiClass::Name && !normalised.is_empty() {
            self.row_names.push(normalised.clone());
        }
        self.insert(class, &normalised);
    }

    /// Ends the current row: its NAME values, when there are several, are
    /// kept as one name too.
    pub fn end_row(&mut self) {
        if self.row_names.len() > 1 {
            let joined = self.row_names.join(" ");
            let whole = normalise(PhiClass::Name, &joined);
            self.insert(PhiClass::Name, &whole);
        }
        self.row_names.clear();
    }

    fn insert(&mut self, class: PhiClass, normalised: &str) {
        if normalised.is_empty() {
            return;
        }
        if self.len >= Self::CAP {
            // Full: no more hashing, so a huge result costs no more.
            self.omitted += 1;
            return;
        }
        let Some(pseudonym) = self.key.digest(class, normalised) else { return };
        if self.seen.entry(class).or_default().insert(pseudonym) {
            self.len += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.omitted == 0
    }

    /// Values read once the cap was reached: not hashed, not kept (one
    /// kept before may be among them).
    pub fn omitted(&self) -> u64 {
        self.omitted
    }

    /// Class name → sorted hex pseudonyms, for the outcome record.
    pub fn by_class(&self) -> BTreeMap<String, Vec<String>> {
        self.seen
            .iter()
            .filter(|(_, set)| !set.is_empty())
            .map(|(class, set)| (class.as_str().to_string(), set.iter().map(|p| hex(p)).collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Arc<DisclosureKey> {
        Arc::new(DisclosureKey::new(k.as_bytes()))
    }

    #[test]
    fn normalisation_makes_spellings_of_one_value_meet() {
        let cases = [
            (PhiClass::Mrn, " MRN0100001 ", "MRN0100001"),
            (PhiClass::Mrn, "mrn-010-0001", "MRN0100001"),
            (PhiClass::Ssn, "123-45-6789", "123456789"),
            (PhiClass::Ssn, "123 45 6789", "123456789"),
            (PhiClass::Name, "Ava Okafor", "ava okafor"),
            (PhiClass::Name, "  OKAFOR,\tAva ", "ava okafor"),
            (PhiClass::Name, "Élodie  Moreau", "moreau élodie"),
            (PhiClass::Name, " - ", ""),
        ];
        for (class, value, want) in cases {
            assert_eq!(normalise(class, value), want, "{class:?} {value:?}");
        }
    }

    #[test]
    fn pseudonyms_are_keyed_and_class_separated() {
        let a = key("key-a-0123456789abcdef");
        let b = key("key-b-0123456789abcdef");
        let p = a.pseudonym(PhiClass::Mrn, "MRN0100001").unwrap();
        assert_eq!(p.len(), 32);
        assert!(p.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(a.pseudonym(PhiClass::Mrn, " mrn 0100001").as_ref(), Some(&p));
        assert_ne!(b.pseudonym(PhiClass::Mrn, "MRN0100001").as_ref(), Some(&p), "another key");
        assert_ne!(a.pseudonym(PhiClass::Ssn, "MRN0100001").as_ref(), Some(&p), "another class");
        assert_eq!(a.pseudonym(PhiClass::Mrn, "--"), None);
        // Not the masking strategy's token for the same value and key.
        let profile = crate::Profile::safe_harbor()
            .with_key(b"key-a-0123456789abcdef")
            .with_strategy(PhiClass::Mrn, crate::Strategy::Pseudonym)
            .unwrap();
        let masker = crate::Masker::new(crate::Detector::new(), profile);
        let token =
            masker.mask_column(crate::ColumnRule::Phi(PhiClass::Mrn), "MRN0100001", &mut crate::ClassCounts::default());
        assert!(!p.starts_with(token.trim_start_matches("[MRN:").trim_end_matches(']')), "{token} {p}");
    }

    #[test]
    fn a_row_s_name_columns_make_one_name() {
        let k = key("0123456789abcdef0123");
        let mut subjects = Subjects::new(k.clone());
        subjects.add(PhiClass::Mrn, "MRN0100001");
        subjects.add(PhiClass::Name, "Ava");
        subjects.add(PhiClass::Name, "Okafor");
        subjects.add(PhiClass::Zip, "02139");
        subjects.end_row();
        subjects.add(PhiClass::Mrn, "mrn0100001");
        subjects.end_row();
        let record = subjects.by_class();
        assert_eq!(record.keys().collect::<Vec<_>>(), ["MRN", "NAME"]);
        assert_eq!(record["MRN"], [k.pseudonym(PhiClass::Mrn, "MRN0100001").unwrap()]);
        let full = k.pseudonym(PhiClass::Name, "Okafor, Ava").unwrap();
        assert!(record["NAME"].contains(&full), "{record:?}");
        assert_eq!(record["NAME"].len(), 3, "each name column, and the whole name");
        let mut sorted = record["NAME"].clone();
        sorted.sort();
        assert_eq!(sorted, record["NAME"]);
        let json = serde_json::to_string(&record).unwrap();
        for clear in ["MRN0100001", "Ava", "Okafor", "ava", "okafor", "02139"] {
            assert!(!json.contains(clear), "{clear} in {json}");
        }
    }

    #[test]
    fn past_the_cap_values_are_counted_not_kept() {
        let mut subjects = Subjects::new(key("0123456789abcdef0123"));
        for i in 0..Subjects::CAP + 5 {
            subjects.add(PhiClass::Mrn, &format!("MRN{i}"));
        }
        subjects.add(PhiClass::Mrn, "MRN0");
        assert_eq!(subjects.by_class()["MRN"].len(), Subjects::CAP);
        assert_eq!(subjects.omitted(), 6, "five new values and one seen before");
    }
}
