//! Column semantics: what a column's name (and PostgreSQL type) says about
//! the values in it, with operator overrides per `table.column`.
//!
//! Owns: the name → class rules. The same rules read JSON keys and FHIR
//! `system`/`url` hints (`structured.rs`).

use crate::PhiClass;
use std::collections::HashMap;

/// What to do with the values of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRule {
    /// Every value is an identifier of this class: masked whole when no
    /// recogniser matches a part of it.
    Phi(PhiClass),
    /// Unknown or free text: the content recognisers decide.
    FreeText,
    /// Declared not PHI (states, codes, statuses): left alone.
    NotPhi,
}

/// The built-in rules plus operator overrides.
#[derive(Debug, Clone, Default)]
pub struct ColumnMap {
    /// Keyed by lower-case `table.column` (or `*.column` for any table).
    overrides: HashMap<String, ColumnRule>,
}

impl ColumnMap {
    pub fn new() -> ColumnMap {
        ColumnMap::default()
    }

    /// Declares the rule for `table.column` (`*.column` for every table),
    /// ahead of the built-in rules.
    pub fn with_override(mut self, table_column: &str, rule: ColumnRule) -> ColumnMap {
        self.overrides.insert(table_column.to_ascii_lowercase(), rule);
        self
    }

    /// The tables `table.column` overrides name (lower case), for callers
    /// that must map a result's table OIDs to names.
    pub fn override_tables(&self) -> impl Iterator<Item = &str> {
        self.overrides.keys().filter_map(|key| key.rsplit_once('.')).map(|(table, _)| table).filter(|t| *t != "*")
    }

    /// The rule for a column, by override, then name, then PostgreSQL type
    /// (a `date` or `timestamp` column whose name says nothing is a date).
    pub fn classify(&self, table: Option<&str>, column: &str, pg_type: Option<&str>) -> ColumnRule {
        if !self.overrides.is_empty() {
            let column_lower = column.to_ascii_lowercase();
            let exact = table.map(|t| format!("{}.{column_lower}", t.to_ascii_lowercase()));
            let found =
                exact.and_then(|k| self.overrides.get(&k)).or_else(|| self.overrides.get(&format!("*.{column_lower}")));
            if let Some(rule) = found {
                return *rule;
            }
        }
        match classify_name_cached(column) {
            ColumnRule::FreeText if pg_type.is_some_and(is_date_type) => ColumnRule::Phi(PhiClass::Date),
            rule => rule,
        }
    }
}

fn is_date_type(pg_type: &str) -> bool {
    let t = pg_type.to_ascii_lowercase();
    t == "date" || t.starts_with("timestamp")
}

/// One built-in rule: the class applies when the name has a word of `any`
/// (or `any` is empty), every word of `all`, and no word of `none`.
struct Rule {
    any: &'static [&'static str],
    all: &'static [&'static str],
    none: &'static [&'static str],
    class: PhiClass,
}

const fn rule(any: &'static [&'static str], all: &'static [&'static str], class: PhiClass) -> Rule {
    Rule { any, all, none: &[], class }
}

/// Names that are never PHI whatever else matches.
const NOT_PHI: &[&str] = &["state", "country", "gender", "sex", "status", "resourcetype", "use", "system", "url"];

/// Words that, when no rule above matched, make a column not PHI: codes,
/// order and lot numbers, money (`order_id`, `icd10_code`, `balance_due`).
const NOT_PHI_WORDS: &[&str] = &[
    "order",
    "lot",
    "batch",
    "invoice",
    "claim",
    "accession",
    "specimen",
    "requisition",
    "code",
    "amount",
    "balance",
    "charge",
    "price",
    "cost",
    "copay",
    "dose",
    "qty",
    "quantity",
];

/// The rules, first match wins: specific identifiers before the generic
/// words (`email_address` is an email, not an address; `patient_id` an MRN,
/// not a name).
const RULES: &[Rule] = &[
    rule(&["ssn", "ssnumber"], &[], PhiClass::Ssn),
    rule(&[], &["social", "security"], PhiClass::Ssn),
    rule(&["mrn", "mrno"], &[], PhiClass::Mrn),
    rule(&[], &["medical", "record"], PhiClass::Mrn),
    rule(&["number", "no", "id"], &["chart"], PhiClass::Mrn),
    rule(&["email", "mail", "emailaddress"], &[], PhiClass::Email),
    rule(&["fax", "facsimile"], &[], PhiClass::Fax),
    rule(&["phone", "telephone", "tel", "mobile", "cell", "cellphone", "pager", "phonenumber"], &[], PhiClass::Phone),
    rule(&["ip", "ipv4", "ipv6", "ipaddress"], &[], PhiClass::IpAddress),
    rule(&["url", "website", "homepage", "uri", "link", "webpage"], &[], PhiClass::Url),
    rule(
        &[
            "photo",
            "photograph",
            "portrait",
            "face",
            "faceimage",
            "fingerprint",
            "retina",
            "iris",
            "voiceprint",
            "biometric",
        ],
        &[],
        PhiClass::Biometric,
    ),
    rule(&["vin", "vehicle", "plate"], &[], PhiClass::VehicleId),
    rule(&["device", "serial", "udi", "imei", "mac"], &[], PhiClass::DeviceId),
    rule(&["license", "licence", "npi", "dea", "certificate"], &[], PhiClass::License),
    rule(&["number", "no", "id"], &["dl"], PhiClass::License),
    rule(&["account", "acct"], &[], PhiClass::Account),
    rule(&[], &["health", "plan"], PhiClass::HealthPlanId),
    rule(
        &["member", "beneficiary", "insurance", "policy", "subscriber", "mbi", "medicaid", "medicare", "hicn"],
        &[],
        PhiClass::HealthPlanId,
    ),
    rule(&["study", "employee", "biobank", "registry", "badge", "participant", "subject"], &[], PhiClass::OtherId),
    rule(&["id", "number", "no"], &["patient"], PhiClass::Mrn),
    rule(&["id", "number", "no"], &["person"], PhiClass::Mrn),
    rule(&["zip", "zipcode", "postal", "postcode", "postalcode"], &[], PhiClass::Zip),
    rule(&["city", "town", "county", "municipality", "birthplace"], &[], PhiClass::City),
    rule(&["address", "street", "addr", "line", "line1", "line2"], &[], PhiClass::Address),
    rule(
        &[
            "dob",
            "birth",
            "birthdate",
            "birthday",
            "date",
            "dt",
            "ts",
            "timestamp",
            "admitted",
            "discharged",
            "deceased",
            "death",
        ],
        &[],
        PhiClass::Date,
    ),
    rule(&["age"], &[], PhiClass::Age90Plus),
    Rule {
        any: &[
            "name",
            "surname",
            "family",
            "given",
            "firstname",
            "lastname",
            "fullname",
            "middlename",
            "maiden",
            "nickname",
            "patient",
            "contact",
            "guarantor",
            "kin",
            "relative",
            "spouse",
            "mother",
            "father",
            "physician",
            "provider",
            "doctor",
            "attending",
            "practitioner",
            "nurse",
            "pcp",
            "guardian",
            "caregiver",
        ],
        all: &[],
        none: &[
            "drug",
            "facility",
            "hospital",
            "department",
            "dept",
            "product",
            "test",
            "file",
            "plan",
            "payer",
            "org",
            "organization",
            "company",
            "medication",
            "diagnosis",
            "procedure",
            "lab",
            "code",
            "clinic",
            "unit",
            "type",
            "user",
            "host",
            "table",
            "column",
            "brand",
            "generic",
            "vendor",
            "manufacturer",
        ],
        class: PhiClass::Name,
    },
];

/// A set of rule words, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct WordSet([u64; 4]);

impl WordSet {
    fn with(mut self, bit: usize) -> WordSet {
        self.0[bit / 64] |= 1 << (bit % 64);
        self
    }

    fn intersects(self, other: WordSet) -> bool {
        self.0.iter().zip(other.0).any(|(a, b)| a & b != 0)
    }

    fn contains(self, other: WordSet) -> bool {
        self.0.iter().zip(other.0).all(|(a, b)| a & b == b)
    }

    fn is_empty(self) -> bool {
        self.0 == [0; 4]
    }
}

/// Every word the rules mention, as a bit each, so a name is read once
/// and each rule is three set tests.
struct Vocabulary {
    /// Sorted; a word's bit is its index.
    words: Vec<&'static str>,
    rules: Vec<(WordSet, WordSet, WordSet, PhiClass)>,
    not_phi: WordSet,
}

fn vocabulary() -> &'static Vocabulary {
    static VOCABULARY: std::sync::OnceLock<Vocabulary> = std::sync::OnceLock::new();
    VOCABULARY.get_or_init(|| {
        let mut words: Vec<&'static str> =
            RULES.iter().flat_map(|r| r.any.iter().chain(r.all).chain(r.none)).chain(NOT_PHI_WORDS).copied().collect();
        words.sort_unstable();
        words.dedup();
        assert!(words.len() <= 256, "the column vocabulary outgrew WordSet");
        let set = |list: &[&str]| {
            list.iter().fold(WordSet::default(), |acc, w| match words.binary_search(w) {
                Ok(bit) => acc.with(bit),
                Err(_) => acc,
            })
        };
        let rules = RULES.iter().map(|r| (set(r.any), set(r.all), set(r.none), r.class)).collect();
        let not_phi = set(NOT_PHI_WORDS);
        Vocabulary { words, rules, not_phi }
    })
}

/// [`classify_name`] through a per-thread memo: the same few dozen column
/// names and JSON keys recur on every row, and reading a name's words
/// costs more than looking it up. Bounded: cleared past 4,096 names.
pub(crate) fn classify_name_cached(name: &str) -> ColumnRule {
    use std::cell::RefCell;
    use std::hash::BuildHasherDefault;
    type Memo = HashMap<Box<str>, ColumnRule, BuildHasherDefault<crate::lexicon::Fnv>>;
    thread_local! {
        static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
    }
    MEMO.with(|memo| {
        if let Some(rule) = memo.borrow().get(name) {
            return *rule;
        }
        let rule = classify_name(name);
        let mut memo = memo.borrow_mut();
        if memo.len() >= 4096 {
            memo.clear();
        }
        memo.insert(name.into(), rule);
        rule
    })
}

/// The built-in rule for a column or key name such as `patient_name`,
/// `dob`, `birthDate`, `address_line1`, `last_login_ip`.
pub fn classify_name(name: &str) -> ColumnRule {
    if NOT_PHI.iter().any(|w| name.eq_ignore_ascii_case(w)) {
        return ColumnRule::NotPhi;
    }
    let vocabulary = vocabulary();
    let mut words = WordSet::default();
    for_each_word(name, |w| {
        if let Ok(bit) = vocabulary.words.binary_search(&w) {
            words = words.with(bit);
        }
    });
    if words.is_empty() {
        return ColumnRule::FreeText;
    }
    vocabulary
        .rules
        .iter()
        .find(|(any, all, none, _)| {
            (any.is_empty() || words.intersects(*any)) && words.contains(*all) && !words.intersects(*none)
        })
        .map_or_else(
            || if words.intersects(vocabulary.not_phi) { ColumnRule::NotPhi } else { ColumnRule::FreeText },
            |r| ColumnRule::Phi(r.3),
        )
}

/// Calls `f` with each word of a column name in lower case: split at
/// anything not a letter or digit, and at lower-to-upper camelCase
/// boundaries (`birthDate` → `birth`, `date`). No allocation; words over 32
/// bytes are skipped (no rule word is that long).
fn for_each_word(name: &str, mut f: impl FnMut(&str)) {
    let mut buf = [0u8; 32];
    let mut len = 0usize;
    let mut too_long = false;
    let mut prev_lower = false;
    let mut flush = |buf: &[u8; 32], len: &mut usize, too_long: &mut bool| {
        if *len > 0
            && !*too_long
            && let Ok(w) = std::str::from_utf8(&buf[..*len])
        {
            f(w);
        }
        *len = 0;
        *too_long = false;
    };
    for b in name.bytes() {
        if !b.is_ascii_alphanumeric() {
            flush(&buf, &mut len, &mut too_long);
            prev_lower = false;
            continue;
        }
        if b.is_ascii_uppercase() && prev_lower {
            flush(&buf, &mut len, &mut too_long);
        }
        prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
        if len < buf.len() {
            buf[len] = b.to_ascii_lowercase();
            len += 1;
        } else {
            too_long = true;
        }
    }
    flush(&buf, &mut len, &mut too_long);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_classes() {
        let cases = [
            ("first_name", ColumnRule::Phi(PhiClass::Name)),
            ("patient_name", ColumnRule::Phi(PhiClass::Name)),
            ("ssn", ColumnRule::Phi(PhiClass::Ssn)),
            ("dob", ColumnRule::Phi(PhiClass::Date)),
            ("birth_date", ColumnRule::Phi(PhiClass::Date)),
            ("birthDate", ColumnRule::Phi(PhiClass::Date)),
            ("mrn", ColumnRule::Phi(PhiClass::Mrn)),
            ("phone", ColumnRule::Phi(PhiClass::Phone)),
            ("zip", ColumnRule::Phi(PhiClass::Zip)),
            ("postalCode", ColumnRule::Phi(PhiClass::Zip)),
            ("address_line1", ColumnRule::Phi(PhiClass::Address)),
            ("email", ColumnRule::Phi(PhiClass::Email)),
            ("email_address", ColumnRule::Phi(PhiClass::Email)),
            ("last_login_ip", ColumnRule::Phi(PhiClass::IpAddress)),
            ("age", ColumnRule::Phi(PhiClass::Age90Plus)),
            ("state", ColumnRule::NotPhi),
            ("drug_name", ColumnRule::FreeText),
            ("order_id", ColumnRule::NotPhi),
            ("icd10_code", ColumnRule::NotPhi),
            ("zip_code", ColumnRule::Phi(PhiClass::Zip)),
            ("note", ColumnRule::FreeText),
            ("face_photo", ColumnRule::Phi(PhiClass::Biometric)),
            ("fingerprint_template", ColumnRule::Phi(PhiClass::Biometric)),
            ("photo_url", ColumnRule::Phi(PhiClass::Url)),
        ];
        for (name, want) in cases {
            assert_eq!(classify_name(name), want, "{name}");
        }
    }

    #[test]
    fn overrides_and_types() {
        let map = ColumnMap::new()
            .with_override("visits.code", ColumnRule::Phi(PhiClass::OtherId))
            .with_override("*.email", ColumnRule::NotPhi);
        assert_eq!(map.classify(Some("visits"), "code", None), ColumnRule::Phi(PhiClass::OtherId));
        assert_eq!(map.classify(Some("other"), "code", None), ColumnRule::NotPhi);
        assert_eq!(map.classify(Some("x"), "EMAIL", None), ColumnRule::NotPhi);
        assert_eq!(map.classify(None, "seen", Some("timestamptz")), ColumnRule::Phi(PhiClass::Date));
        assert_eq!(map.override_tables().collect::<Vec<_>>(), ["visits"], "`*` names no table");
    }
}
