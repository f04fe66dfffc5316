//! PHI detection and masking for Sluice: HIPAA Safe Harbor recognisers,
//! column semantics and masking profiles, with no protocol knowledge.
//!
//! Owns: finding the 18 Safe Harbor identifier types in text, JSON
//! documents, HL7 v2 messages and column values, and rewriting them by a
//! profile. Does not: know PostgreSQL messages or the audit log; a caller
//! gets per-class counts ([`ClassCounts`]), never values.
//!
//! # Layout
//! - `class.rs`: [`PhiClass`] (named as the phi-dev corpus names them) and [`ClassCounts`].
//! - `detect.rs`: [`Detector`], [`Span`]; picks the reader for a text; column-value rule.
//! - `freetext.rs`: pattern recognisers, validators applied, context words.
//! - `names.rs`: person names from dictionaries and cues.
//! - `structured.rs`: JSON key paths and HL7 v2 fields.
//! - `column.rs`: [`ColumnMap`], column name/type → [`ColumnRule`], overrides.
//! - `profile.rs`: [`Profile`], [`Strategy`], rewriting.
//! - `validate.rs`: Luhn, SSN, VIN, NPI, DEA, MBI, calendar checks.
//! - `lexicon.rs`: the shipped word lists (`data/`, sources in `data/README.md`).
//! - `jsonl.rs`: the JSONL driver behind `sluice mask`.
//! - `disclosure.rs`: [`DisclosureKey`], [`Subjects`]: keyed pseudonyms of the
//!   MRN, SSN and NAME values a request returned (accounting of disclosures).
//!
//! # Recognisers, their sources and known limits
//! | class | recogniser | limits |
//! | --- | --- | --- |
//! | NAME | runs of up to four capitalised words: a run with a word in the 1990 US Census given-name or surname lists (not in `data/not_names.txt`) or a non-ASCII capitalised word; any run after a title (`Dr.`, `Mr.`, `Ms.`), label (`Patient:`, `Name:`, `RE:`, `cc:`, `seen by`, `per`) or relationship word (`daughter`, `wife`, `neighbor`, ...); `LAST, FIRST` in capitals or after a label; all-capital runs that are half dictionary names. A name found once is masked at every other mention in the same text. Eponyms (`Graves' disease`, `Bell palsy`), state names and credentials (`MD`, `NP`) are skipped. | names in lower case; a lone unknown name at the start of a sentence with no cue and no other mention ("Darsh grew up ..."); lone common-word names ("Summer reports ...") |
//! | ADDRESS | a house number then capitalised words ending in a USPS street suffix, with an optional unit (`Apt. 4`); `PO Box n` | streets without a suffix ("Broadway"), non-US formats |
//! | CITY | the words before `STATE ZIP`, and after `lived in`, `born ... in`, `grew up in`, ... | a city alone with no such cue |
//! | ZIP | five (or 5+4) digits after a state code or name, or after `zip`/`postal code` | a ZIP alone: five-digit numbers are also CPT codes, so one needs context |
//! | DATE | ISO, numeric (M/D/Y and D/M/Y, 2- or 4-digit year, validated), month names (`Sep 20, 2022`, `5th of July`, `02-Nov-2018`), `YYYYMMDD` after `born`/`DOB`/`on` | a year alone is not masked (not PHI); relative dates ("last Tuesday") are not |
//! | AGE_90PLUS | 90–129 before `yo`/`years old`, after `age`/`aged` | ages written in words |
//! | PHONE / FAX | US formats (with `+1`, parentheses, extensions) and `+CC` international, 10–15 digits; FAX when `fax` precedes on the line | numbers with no separators and no cue |
//! | EMAIL, URL | RFC-shaped addresses; `http(s)://` and `www.` | bare domains |
//! | SSN | `ddd-dd-dddd` / `ddd dd dddd` passing SSA area/group/serial rules; any form after `SSN`/`social security` | nine bare digits with no cue |
//! | MRN, ACCOUNT, HEALTH_PLAN_ID, LICENSE, VEHICLE_ID, DEVICE_ID, OTHER_ID | the identifier after a context word (`MRN`, `acct`, `member ID`, `beneficiary ID`, `driver's license`, `NPI`, `DEA`, `VIN`, `plate`, `serial`, `UDI`, `study ID`, `badge`, ...); by format alone: VIN with its check digit, Medicare MBI, DEA with its check digit, GS1 UDI `(01)…`, MAC address, 15-digit Luhn IMEI | identifiers with neither a cue nor a checkable format |
//! | IP_ADDRESS | IPv4 with octets ≤ 255, not after `firmware`/`version`; IPv6 with at least three groups | — |
//!
//! Look-alikes left alone by construction: ICD-10, CPT, LOINC and NDC codes
//! (no recogniser matches their shapes without a cue), lab values and
//! vitals, years alone, times, ages under 90, state names and codes.
//!
//! Structured input: a JSON object's keys are column names
//! ([`column::classify_name`]); a FHIR `value` takes its class from a
//! sibling `system`/`url`/`type` (`"system": "phone"`, the SSN OID
//! `2.16.840.1.113883.4.1`, `.../mrn`). HL7 v2 PID, NK1, GT1, IN1, PV1
//! fields are masked by position.
//!
//! # Fast path
//! Free text runs a context-word automaton (aho-corasick) and one
//! `RegexSet::is_match` pass; only the patterns the set reports are run, and
//! the name pass collects words only when some word could start a name. A
//! value that no pattern and no name cue touches allocates nothing, and [`Masker::mask`] /
//! [`Masker::mask_value`] return `Cow::Borrowed` for it; [`ClassCounts`]
//! carries how many values of each class were rewritten. Column names are
//! classified once per thread and remembered. On the phi-dev rows (JSON
//! objects, 43 columns) the engine runs at about 120 MB/s per core once
//! warm (`bench/phi.sh`).
//!
//! # Strategies and profiles
//! [`Profile::safe_harbor`] redacts (`[SSN]`) every class except DATE
//! (kept as its year), ZIP (first three digits, `000` for the 17
//! restricted areas in `data/zip3_restricted.txt`) and AGE_90PLUS (`90+`).
//! [`Profile::unmasked`] keeps everything (the caller records its use).
//! [`Strategy::Partial`] keeps the last four characters,
//! [`Strategy::Pseudonym`] writes a keyed HMAC-SHA256 token so equal values
//! stay equal.

mod class;
pub mod column;
mod detect;
mod disclosure;
mod error;
mod freetext;
pub mod jsonl;
mod lexicon;
mod names;
mod profile;
mod structured;
mod validate;

pub use class::{ClassCounts, PhiClass, UnknownClass};
pub use column::{ColumnMap, ColumnRule};
pub use detect::{Detector, Span};
pub use disclosure::{DisclosureKey, SUBJECT_CLASSES, Subjects, is_subject_class, normalise as normalise_subject};
pub use error::MaskError;
pub use profile::{Profile, Strategy};

use std::borrow::Cow;
use std::sync::Arc;

/// A detector and a profile: what callers hold to mask texts and values.
/// Maskers of several profiles share one detector.
#[derive(Debug)]
pub struct Masker {
    detector: Arc<Detector>,
    profile: Profile,
}

impl Masker {
    pub fn new(detector: impl Into<Arc<Detector>>, profile: Profile) -> Masker {
        Masker { detector: detector.into(), profile }
    }

    /// The built-in recognisers with the Safe Harbor profile.
    pub fn safe_harbor() -> Masker {
        Masker::new(Detector::new(), Profile::safe_harbor())
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// A document (free text, JSON or HL7 v2) with its PHI rewritten;
    /// borrowed when nothing is.
    pub fn mask<'a>(&self, text: &'a str, counts: &mut ClassCounts) -> Cow<'a, str> {
        if self.profile.is_unmasked() {
            return Cow::Borrowed(text);
        }
        let mut spans = Vec::new();
        self.detector.detect_into(text, &mut spans);
        self.profile.apply(text, &spans, counts)
    }

    /// One column value (`table`, `column` and the PostgreSQL type name as
    /// a RowDescription gives them) with its PHI rewritten; borrowed when
    /// nothing is.
    pub fn mask_value<'a>(
        &self,
        table: Option<&str>,
        column: &str,
        pg_type: Option<&str>,
        value: &'a str,
        counts: &mut ClassCounts,
    ) -> Cow<'a, str> {
        let rule = self.detector.columns().classify(table, column, pg_type);
        self.mask_column(rule, value, counts)
    }

    /// One value of a column whose rule the caller already resolved (once
    /// per result, with [`ColumnMap::classify`]); borrowed when nothing
    /// is rewritten.
    pub fn mask_column<'a>(&self, rule: ColumnRule, value: &'a str, counts: &mut ClassCounts) -> Cow<'a, str> {
        if self.profile.is_unmasked() || rule == ColumnRule::NotPhi {
            return Cow::Borrowed(value);
        }
        let mut spans = Vec::new();
        self.detector.detect_value(rule, value, 0, &mut spans);
        detect::normalise(&mut spans);
        self.profile.apply(value, &spans, counts)
    }
}
