//! Recognisers for identifiers written in free text: formats with
//! validators, numbers made PHI by a context word, dates, ages over 89,
//! addresses, cities and ZIPs.
//!
//! Owns: the pattern table, its `RegexSet` prefilter, and the context-word
//! automaton. Names are `names.rs`; JSON and HL7 structure is
//! `structured.rs`.

use crate::PhiClass;
use crate::detect::Span;
use crate::lexicon::{self, Lexicon};
use crate::validate;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

/// Lazy-DFA cache per pattern: large enough that scanning does not keep
/// rebuilding states (the default 2 MiB thrashed on the combined set).
const DFA_CACHE: usize = 64 << 20;

/// One pattern and what its matches mean.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    Email,
    Url,
    Ipv4,
    Ipv6,
    Mac,
    Udi,
    Ssn,
    UsPhone,
    IntlPhone,
    IsoDate,
    NumericDate,
    MonthNameDate,
    DayMonthDate,
    CompactDate,
    Age,
    AgeLabel,
    MonthDay,
    BarePhone,
    CityStateZip,
    CityCue,
    Address,
    PoBox,
    Vin,
    Mbi,
    Dea,
    Imei,
}

const MONTH: &str = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?|JAN|FEB|MAR|APR|MAY|JUNE?|JULY?|AUG|SEPT?|OCT|NOV|DEC)";

fn table() -> Vec<(Pattern, String)> {
    let state_codes = lexicon::STATE_CODES.join("|");
    let state_names = lexicon::STATE_NAMES.join("|");
    vec![
        (Pattern::Email, r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}".into()),
        (Pattern::Url, r#"(?i:https?://|www\.)[^\s"'<>|^\\]+"#.into()),
        (Pattern::Ipv4, r"(?-u:\b)(?:\d{1,3}\.){3}\d{1,3}(?-u:\b)".into()),
        (Pattern::Ipv6, r"(?i)(?-u:\b)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}".into()),
        (Pattern::Mac, r"(?-u:\b)[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5}(?-u:\b)".into()),
        (Pattern::Udi, r"\(01\)\d{14}(?:\(\d{2}\)[A-Za-z0-9\-]+)*".into()),
        (Pattern::Ssn, r"(?-u:\b)\d{3}[\- ]\d{2}[\- ]\d{4}(?-u:\b)".into()),
        (
            Pattern::UsPhone,
            r"(?:\+?1[\-. ]?)?(?:\(\d{3}\)\s?|(?-u:\b)\d{3}[\-. ])\d{3}[\-. ]\d{4}(?-u:\b)(?:\s?(?:x|ext\.?)\s?\d{1,5})?"
                .into(),
        ),
        (Pattern::IntlPhone, r"\+\d{1,3}(?:[\-. ]?\(?\d{1,5}\)?){2,6}(?-u:\b)".into()),
        (Pattern::IsoDate, r"(?-u:\b)\d{4}[\-/.]\d{1,2}[\-/.]\d{1,2}(?-u:\b)".into()),
        (Pattern::NumericDate, r"(?-u:\b)\d{1,2}[\-/.]\d{1,2}[\-/.](?:\d{4}|\d{2})(?-u:\b)".into()),
        (
            Pattern::MonthNameDate,
            format!(r"(?-u:\b)(?:(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day,?\s+)?{MONTH}\.?(?:\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|,?\s+\d{{4}})(?-u:\b)"),
        ),
        (
            Pattern::DayMonthDate,
            format!(r"(?-u:\b)\d{{1,2}}(?:st|nd|rd|th)?(?:\s+of)?[\s\-]{MONTH}\.?(?:,?[\s\-]\d{{4}}|-\d{{2}})?(?-u:\b)"),
        ),
        (Pattern::CompactDate, r"(?-u:\b)(?:19|20)\d{6}(?-u:\b)".into()),
        (Pattern::MonthDay, r"(?-u:\b)\d{1,2}/\d{1,2}(?-u:\b)".into()),
        (Pattern::BarePhone, r"(?-u:\b)[2-9]\d{2}[2-9]\d{6}(?-u:\b)".into()),
        (
            Pattern::Age,
            r"(?i)(?-u:\b)(9\d|1[0-2]\d)\s?-?\s?(?:yo|y/o|y\.o\.?|yrs?|years?)(?:[\- ]old)?(?-u:\b)".into(),
        ),
        (Pattern::AgeLabel, r"(?i)(?-u:\b)age[ds]?\s*[:=\-]?\s*(?:age\s*)?(9\d|1[0-2]\d)(?-u:\b)".into()),
        (
            Pattern::CityStateZip,
            format!(r"(?-u:\b)(?:{state_codes}|{state_names})\.?,?[ \t]+\d{{5}}(?:-\d{{4}})?(?-u:\b)"),
        ),
        (
            Pattern::CityCue,
            r"(?i:lived in|lives in|living in|born in|grew up in|resides in|resident of|moved from|relocated from|native of|raised in|hometown of|hometown|born on [^,;\n]{1,24}? in)[ \t]+[A-Z\x{80}-\x{10FFFF}]".into(),
        ),
        (Pattern::Address, r"(?-u:\b)\d{1,6} [A-Z]".into()),
        (Pattern::PoBox, r"(?i)(?-u:\b)P\.?\s?O\.?\s+Box\s+\d+".into()),
        (Pattern::Vin, r"(?-u:\b)[A-HJ-NPR-Z0-9]{17}(?-u:\b)".into()),
        (Pattern::Mbi, r"(?-u:\b)[1-9][A-Z][A-Z0-9]\d-?[A-Z][A-Z0-9]\d-?[A-Z]{2}\d{2}(?-u:\b)".into()),
        (Pattern::Dea, r"(?-u:\b)[A-Z]{2}\d{7}(?-u:\b)".into()),
        (Pattern::Imei, r"(?-u:\b)\d{15}(?-u:\b)".into()),
    ]
}

/// Words that, shortly before a bare `M/D` or `YYYYMMDD`, make it a date.
const DATE_CUES: &[&str] = &[
    "on",
    "since",
    "date",
    "dated",
    "seen",
    "registered",
    "admitted",
    "discharged",
    "until",
    "dob",
    "born",
    "birth",
    "visit",
    "d.o.b",
    "from",
    "last",
    "next",
    "by",
    "admission",
    "discharge",
];

/// Words that make a bare ten-digit number something other than a phone.
const NOT_PHONE_CUES: &[&str] = &[
    "order",
    "ref",
    "reference",
    "lot",
    "batch",
    "invoice",
    "claim",
    "confirmation",
    "req",
    "accession",
    "specimen",
    "requisition",
    "tracking",
    "mrn",
    "account",
    "acct",
];

/// Context words that make the identifier after them PHI of a class.
const CUES: &[(&str, PhiClass)] = &[
    ("mrn", PhiClass::Mrn),
    ("mr#", PhiClass::Mrn),
    ("mr #", PhiClass::Mrn),
    ("medical record", PhiClass::Mrn),
    ("record number", PhiClass::Mrn),
    ("chart number", PhiClass::Mrn),
    ("chart #", PhiClass::Mrn),
    ("chart no", PhiClass::Mrn),
    ("patient id", PhiClass::Mrn),
    ("patient number", PhiClass::Mrn),
    ("hospital number", PhiClass::Mrn),
    ("ssn", PhiClass::Ssn),
    ("ss#", PhiClass::Ssn),
    ("social security", PhiClass::Ssn),
    ("soc sec", PhiClass::Ssn),
    ("member id", PhiClass::HealthPlanId),
    ("member number", PhiClass::HealthPlanId),
    ("member #", PhiClass::HealthPlanId),
    ("beneficiary id", PhiClass::HealthPlanId),
    ("beneficiary number", PhiClass::HealthPlanId),
    ("medicare id", PhiClass::HealthPlanId),
    ("medicare number", PhiClass::HealthPlanId),
    ("medicaid id", PhiClass::HealthPlanId),
    ("medicaid number", PhiClass::HealthPlanId),
    ("insurance id", PhiClass::HealthPlanId),
    ("insurance number", PhiClass::HealthPlanId),
    ("insurance member", PhiClass::HealthPlanId),
    ("policy number", PhiClass::HealthPlanId),
    ("policy id", PhiClass::HealthPlanId),
    ("policy #", PhiClass::HealthPlanId),
    ("subscriber id", PhiClass::HealthPlanId),
    ("subscriber number", PhiClass::HealthPlanId),
    ("health plan", PhiClass::HealthPlanId),
    ("plan id", PhiClass::HealthPlanId),
    ("group number", PhiClass::HealthPlanId),
    ("mbi", PhiClass::HealthPlanId),
    ("hicn", PhiClass::HealthPlanId),
    ("account", PhiClass::Account),
    ("acct", PhiClass::Account),
    ("a/c", PhiClass::Account),
    ("driver's license", PhiClass::License),
    ("drivers license", PhiClass::License),
    ("driver license", PhiClass::License),
    ("driver's licence", PhiClass::License),
    ("license", PhiClass::License),
    ("licence", PhiClass::License),
    ("dl #", PhiClass::License),
    ("dl#", PhiClass::License),
    ("npi", PhiClass::License),
    ("dea", PhiClass::License),
    ("certificate", PhiClass::License),
    ("vin", PhiClass::VehicleId),
    ("vehicle identification number", PhiClass::VehicleId),
    ("license plate", PhiClass::VehicleId),
    ("plate", PhiClass::VehicleId),
    ("serial", PhiClass::DeviceId),
    ("s/n", PhiClass::DeviceId),
    ("device id", PhiClass::DeviceId),
    ("udi", PhiClass::DeviceId),
    ("imei", PhiClass::DeviceId),
    ("mac address", PhiClass::DeviceId),
    ("study id", PhiClass::OtherId),
    ("subject id", PhiClass::OtherId),
    ("trial subject", PhiClass::OtherId),
    ("participant id", PhiClass::OtherId),
    ("biobank sample", PhiClass::OtherId),
    ("biobank id", PhiClass::OtherId),
    ("sample id", PhiClass::OtherId),
    ("registry id", PhiClass::OtherId),
    ("badge", PhiClass::OtherId),
    ("employee id", PhiClass::OtherId),
    ("employee number", PhiClass::OtherId),
    ("staff id", PhiClass::OtherId),
    ("zip", PhiClass::Zip),
    ("zip code", PhiClass::Zip),
    ("postal code", PhiClass::Zip),
];

/// Words that may stand between a cue and its identifier ("Medicare
/// beneficiary ID is ...", "account number: ...").
const FILLERS: &[&str] = &["id", "number", "no", "num", "nbr", "is", "of", "code", "sample", "subject", "card"];

/// The free-text recognisers, compiled once.
#[derive(Debug)]
pub(crate) struct FreeText {
    patterns: Vec<Pattern>,
    regexes: Vec<Regex>,
    prefilter: RegexSet,
    cues: AhoCorasick,
}

impl FreeText {
    pub(crate) fn new() -> FreeText {
        let table = table();
        // `\d` would match any Unicode digit; every validator expects ASCII.
        let sources: Vec<String> = table.iter().map(|(_, s)| s.replace(r"\d", "[0-9]")).collect();
        FreeText {
            patterns: table.iter().map(|(p, _)| *p).collect(),
            regexes: sources
                .iter()
                .map(|s| RegexBuilder::new(s).dfa_size_limit(DFA_CACHE).build().expect("built-in pattern compiles"))
                .collect(),
            prefilter: RegexSetBuilder::new(&sources)
                .dfa_size_limit(DFA_CACHE)
                .build()
                .expect("built-in patterns compile"),
            cues: AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(CUES.iter().map(|(c, _)| c))
                .expect("built-in cues compile"),
        }
    }

    /// Appends the spans found in `text` (offsets relative to `text` plus
    /// `base`).
    pub(crate) fn scan(&self, text: &str, base: usize, out: &mut Vec<Span>) {
        self.scan_cues(text, base, out);
        if !self.prefilter.is_match(text) {
            return;
        }
        for index in self.prefilter.matches(text).iter() {
            let pattern = self.patterns[index];
            let regex = &self.regexes[index];
            if matches!(pattern, Pattern::Age | Pattern::AgeLabel) {
                for caps in regex.captures_iter(text) {
                    if let Some(age) = caps.get(1) {
                        out.push(Span { start: base + age.start(), end: base + age.end(), class: PhiClass::Age90Plus });
                    }
                }
            } else {
                for m in regex.find_iter(text) {
                    accept(pattern, text, m.start(), m.end(), base, out);
                }
            }
        }
    }
}

/// Validates one match of `pattern` and appends what it stands for.
fn accept(pattern: Pattern, text: &str, start: usize, end: usize, base: usize, out: &mut Vec<Span>) {
    {
        let bytes = text.as_bytes();
        let matched = &text[start..end];
        let mut push = |s: usize, e: usize, class: PhiClass| out.push(Span { start: base + s, end: base + e, class });
        match pattern {
            Pattern::Email => push(start, end, PhiClass::Email),
            Pattern::Url => {
                let trimmed = matched.trim_end_matches(['.', ',', ';', ':', ')', ']', '}', '!', '?']);
                push(start, start + trimmed.len(), PhiClass::Url);
            }
            Pattern::Ipv4 => {
                let octets_ok = matched.split('.').all(|o| o.parse::<u16>().is_ok_and(|v| v <= 255));
                let dotted_on =
                    (end < bytes.len() && bytes[end] == b'.' && bytes.get(end + 1).is_some_and(u8::is_ascii_digit))
                        || (start > 0 && bytes[start - 1] == b'.');
                if octets_ok
                    && !dotted_on
                    && !preceded_by(text, start, 24, &["firmware", "version", "ver", "build", "software", "v"])
                {
                    push(start, end, PhiClass::IpAddress);
                }
            }
            Pattern::Ipv6 => {
                let colons = matched.bytes().filter(|&b| b == b':').count();
                let groups = matched.split(':').filter(|g| !g.is_empty()).count();
                let hex_letter = matched.bytes().any(|b| b.is_ascii_alphabetic());
                if (colons >= 3 && groups >= 3 && (hex_letter || matched.contains("::") || colons >= 5))
                    || (matched.contains("::") && hex_letter && groups >= 2)
                {
                    push(start, end, PhiClass::IpAddress);
                }
            }
            Pattern::Mac | Pattern::Udi => push(start, end, PhiClass::DeviceId),
            Pattern::Ssn => {
                let digits: Vec<u8> = matched.bytes().filter(u8::is_ascii_digit).collect();
                let seps: Vec<u8> = matched.bytes().filter(|b| !b.is_ascii_digit()).collect();
                if seps[0] == seps[1] && validate::ssn(&digits) && !touches_digit(bytes, start, end) {
                    push(start, end, PhiClass::Ssn);
                }
            }
            Pattern::UsPhone | Pattern::IntlPhone => {
                let digits = matched.bytes().filter(u8::is_ascii_digit).count();
                if (10..=15).contains(&digits) && !touches_digit(bytes, start, end) {
                    let class = if preceded_by(text, start, 32, &["fax"]) { PhiClass::Fax } else { PhiClass::Phone };
                    push(start, end, class);
                }
            }
            Pattern::IsoDate => {
                let parts: Vec<u32> = matched.split(['-', '/', '.']).filter_map(|p| p.parse().ok()).collect();
                if parts.len() == 3
                    && validate::calendar(parts[0], parts[1], parts[2])
                    && !dotted_number(bytes, start, end)
                {
                    push(start, end, PhiClass::Date);
                }
            }
            Pattern::NumericDate => {
                let parts: Vec<u32> = matched.split(['-', '/', '.']).filter_map(|p| p.parse().ok()).collect();
                let year_text = matched.rsplit(['-', '/', '.']).next().unwrap_or("");
                let year = if year_text.len() == 2 { 1900 + parts[2] } else { parts.get(2).copied().unwrap_or(0) };
                let valid = parts.len() == 3
                    && (validate::calendar(year, parts[0], parts[1]) || validate::calendar(year, parts[1], parts[0]));
                let dotted = matched.contains('.');
                if valid && !dotted_number(bytes, start, end) && !(dotted && year_text.len() == 2) {
                    push(start, end, PhiClass::Date);
                }
            }
            Pattern::MonthNameDate | Pattern::DayMonthDate => {
                // "may 5" is a verb; "May 5" and "5th of March" are dates;
                // "June 19:08" is a month and a time of day.
                let time_follows = bytes.get(end) == Some(&b':');
                if matched.chars().any(char::is_uppercase) && !time_follows {
                    push(start, end, PhiClass::Date);
                }
            }
            Pattern::CompactDate => {
                let n = |r: std::ops::Range<usize>| matched[r].parse::<u32>().unwrap_or(0);
                if validate::calendar(n(0..4), n(4..6), n(6..8)) && preceded_by(text, start, 24, DATE_CUES) {
                    push(start, end, PhiClass::Date);
                }
            }
            Pattern::Age | Pattern::AgeLabel => {}
            Pattern::MonthDay => {
                let mut parts = matched.split('/').map(|p| p.parse::<u32>().unwrap_or(0));
                let (month, day) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
                let fraction_or_ratio = bytes.get(end) == Some(&b'/') || (start > 0 && bytes[start - 1] == b'/');
                if validate::calendar(2000, month, day) && !fraction_or_ratio && preceded_by(text, start, 24, DATE_CUES)
                {
                    push(start, end, PhiClass::Date);
                }
            }
            Pattern::BarePhone => {
                let other_number = preceded_by(text, start, 24, NOT_PHONE_CUES);
                if !touches_digit(bytes, start, end) && !other_number {
                    let class = if preceded_by(text, start, 32, &["fax"]) { PhiClass::Fax } else { PhiClass::Phone };
                    push(start, end, class);
                }
            }
            Pattern::CityStateZip => {
                let zip_start = start + matched.rfind(|c: char| !c.is_ascii_digit() && c != '-').map_or(0, |i| i + 1);
                push(zip_start, end, PhiClass::Zip);
                if let Some((s, e)) = city_before(text, start) {
                    push(s, e, PhiClass::City);
                }
            }
            Pattern::CityCue => {
                let city_start = end - matched.chars().next_back().map_or(1, char::len_utf8);
                if let Some(len) = capitalised_words(&text[city_start..], 3) {
                    let city = &text[city_start..city_start + len];
                    if !lexicon::is_state_name(city) {
                        push(city_start, city_start + len, PhiClass::City);
                    }
                }
            }
            Pattern::Address => {
                if let Some(len) = street_address_len(&text[start..]) {
                    let unit = unit_len(&text[start + len..]);
                    push(start, start + len + unit, PhiClass::Address);
                }
            }
            Pattern::PoBox => push(start, end, PhiClass::Address),
            Pattern::Vin => {
                if validate::vin(matched.as_bytes()) && matched.bytes().any(|b| b.is_ascii_alphabetic()) {
                    push(start, end, PhiClass::VehicleId);
                }
            }
            Pattern::Mbi => {
                let compact: Vec<u8> = matched.bytes().filter(|&b| b != b'-').collect();
                if validate::mbi(&compact) {
                    push(start, end, PhiClass::HealthPlanId);
                }
            }
            Pattern::Dea => {
                if validate::dea(matched.as_bytes()) {
                    push(start, end, PhiClass::License);
                }
            }
            Pattern::Imei => {
                if validate::luhn(matched.as_bytes()) {
                    push(start, end, PhiClass::DeviceId);
                }
            }
        }
    }
}

impl FreeText {
    /// Identifiers made PHI by the word before them: "MRN: 1234567",
    /// "billing account 8049-0272-76", "plate SQK-9651".
    fn scan_cues(&self, text: &str, base: usize, out: &mut Vec<Span>) {
        let bytes = text.as_bytes();
        for m in self.cues.find_iter(text) {
            let (start, end) = (m.start(), m.end());
            let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
            let after_ok = end == bytes.len() || !bytes[end].is_ascii_alphanumeric() || bytes[end - 1] == b'#';
            if !(before_ok && after_ok) {
                continue;
            }
            let (cue, class) = CUES[m.pattern().as_usize()];
            if let Some((s, e)) = identifier_after(text, end, class) {
                // An NPI or DEA number that fails its check digit is a typo or
                // not what the cue says; anything else after a cue is masked.
                let token = &bytes[s..e];
                let checked = match cue {
                    "npi" if token.len() == 10 && token.iter().all(u8::is_ascii_digit) => validate::npi(token),
                    "dea" if token.len() == 9 => validate::dea(token),
                    _ => true,
                };
                if checked {
                    out.push(Span { start: base + s, end: base + e, class });
                }
            }
        }
    }
}

/// The identifier that follows a cue ending at `from`: skips separators,
/// filler words ("ID", "number") and up to three other lower-case words
/// ("member ID changed to ...", "SSN on file: ..."), then takes one token
/// with at least one digit and at least three letters or digits. Short
/// groups separated by single spaces are one token ("378 434 848", "ACH
/// 2140"); a decimal amount is never an identifier.
fn identifier_after(text: &str, from: usize, class: PhiClass) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut i = from;
    let mut fillers = 0;
    let mut words = 0;
    loop {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b':' | b'#' | b'=' | b'-' | b'.') {
            i += 1;
        }
        let word_end = i + bytes[i..].iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let word = &text[i..word_end];
        let followed_by_space = bytes.get(word_end).is_some_and(|b| matches!(b, b' ' | b':' | b'\t'));
        if word_end > i && fillers < 3 && FILLERS.iter().any(|f| f.eq_ignore_ascii_case(word)) {
            i = word_end;
            fillers += 1;
            continue;
        }
        if word_end > i
            && words < 3
            && followed_by_space
            && word.len() <= 8
            && word.bytes().all(|b| b.is_ascii_lowercase())
        {
            i = word_end;
            words += 1;
            continue;
        }
        break;
    }
    if i - from > 40 {
        return None;
    }
    let token_len = match ssn_with_spaces(&bytes[i..]) {
        Some(len) if class == PhiClass::Ssn => len,
        _ => grouped_token_len(&bytes[i..]),
    };
    let token = &bytes[i..i + token_len];
    let digits = token.iter().filter(|b| b.is_ascii_digit()).count();
    let alnum = token.iter().filter(|b| b.is_ascii_alphanumeric()).count();
    let amount = token.iter().all(|b| b.is_ascii_digit() || *b == b'.' || *b == b',')
        && token.iter().rev().nth(2).is_some_and(|b| matches!(b, b'.' | b','));
    (digits >= 1 && alnum >= 3 && !amount).then_some((i, i + token_len))
}

/// An identifier token, extended over single spaces while both sides are
/// short groups of capitals and digits (at most four groups).
fn grouped_token_len(bytes: &[u8]) -> usize {
    let group = |b: &[u8]| b.iter().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit()).count();
    let mut len = id_token_len(bytes);
    let mut last = len;
    let mut groups = 1;
    while groups < 4 && (1..=4).contains(&last) && group(&bytes[len - last..len]) == last {
        let Some(rest) = bytes[len..].strip_prefix(b" ") else { break };
        let g = group(rest);
        let ends = rest.get(g).is_none_or(|c| !c.is_ascii_alphanumeric());
        if !(2..=4).contains(&g) || !ends {
            break;
        }
        len += 1 + g;
        last = g;
        groups += 1;
    }
    len
}

fn ssn_with_spaces(bytes: &[u8]) -> Option<usize> {
    let shape = b"ddd dd dddd";
    (bytes.len() >= shape.len()
        && shape.iter().zip(bytes).all(|(s, b)| if *s == b'd' { b.is_ascii_digit() } else { *b == b' ' })
        && bytes.get(shape.len()).is_none_or(|b| !b.is_ascii_digit()))
    .then_some(shape.len())
}

/// Length of an identifier token: letters, digits and `- / ( ) .` inside,
/// ending on a letter, digit or a closing parenthesis that has its opener.
fn id_token_len(bytes: &[u8]) -> usize {
    let mut len = bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'(' | b')' | b'.' | b'_'))
        .count();
    loop {
        let token = &bytes[..len];
        let opens = token.iter().filter(|&&b| b == b'(').count();
        let closes = token.iter().filter(|&&b| b == b')').count();
        match token.last() {
            Some(b')') if closes > opens => len -= 1,
            Some(b'-' | b'/' | b'(' | b'.' | b'_') => len -= 1,
            _ => return len,
        }
    }
}

/// The length of a street address at the start of `text` ("6878 Fowler Isle"),
/// ending at a street suffix; `None` if there is none within five words or
/// a word before it is not capitalised.
fn street_address_len(text: &str) -> Option<usize> {
    let lex = Lexicon::get();
    let mut best = None;
    let number_len = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut pos = number_len;
    let line_end = text.find(['\n', '\r', '\t']).unwrap_or(text.len());
    for (i, word) in text[number_len..line_end].split(' ').filter(|w| !w.is_empty()).take(6).enumerate() {
        let at = pos + text[pos..].find(word).unwrap_or(0);
        pos = at + word.len();
        let ordinal = word.starts_with(|c: char| c.is_ascii_digit())
            && ["st", "nd", "rd", "th"].iter().any(|o| word.to_ascii_lowercase().ends_with(o));
        let capitalised = word.chars().next().is_some_and(char::is_uppercase) || ordinal;
        if !capitalised || word.contains(':') {
            break;
        }
        let bare = word.trim_end_matches([',', ';']);
        if i >= 1 && lex.is_street_suffix(bare) {
            best = Some(at + bare.trim_end_matches(['.']).len() + usize::from(bare.ends_with('.') && bare.len() <= 5));
        }
        if bare.len() != word.len() {
            break;
        }
    }
    best
}

/// The city written before a `STATE ZIP` that starts at `at`: up to three
/// capitalised words, then an optional comma and spaces.
fn city_before(text: &str, at: usize) -> Option<(usize, usize)> {
    let head = text[..at].trim_end_matches([' ', '\t']);
    let head = head.strip_suffix(',').unwrap_or(head).trim_end_matches([' ', '\t']);
    let end = head.len();
    let mut start = end;
    for n in 0..3 {
        let word_end = if n == 0 {
            start
        } else {
            match text[..start].strip_suffix(' ') {
                Some(p) => p.len(),
                None => break,
            }
        };
        let word_len: usize = text[..word_end]
            .chars()
            .rev()
            .take_while(|c| c.is_alphabetic() || matches!(c, '\'' | '’' | '.' | '-'))
            .map(char::len_utf8)
            .sum();
        let word = &text[word_end - word_len..word_end];
        let capitalised = word.chars().next().is_some_and(char::is_uppercase);
        if word_len == 0 || !capitalised {
            break;
        }
        start = word_end - word_len;
    }
    (start < end && !lexicon::is_state_name(&text[start..end])).then_some((start, end))
}

/// The length of up to `max` capitalised words at the start of `text`,
/// separated by single spaces.
fn capitalised_words(text: &str, max: usize) -> Option<usize> {
    let mut len = 0;
    for i in 0..max {
        let rest = &text[len..];
        let rest = if i > 0 {
            match rest.strip_prefix(' ') {
                Some(r) => r,
                None => break,
            }
        } else {
            rest
        };
        if !rest.chars().next().is_some_and(char::is_uppercase) {
            break;
        }
        let word: usize =
            rest.chars().take_while(|c| c.is_alphabetic() || matches!(c, '\'' | '’' | '-')).map(char::len_utf8).sum();
        if word == 0 {
            break;
        }
        len = text.len() - rest.len() + word;
    }
    (len > 0).then_some(len)
}

/// The length of a unit designator right after a street address
/// (" Apt. 663", ", Suite 982", " #4B"), or 0.
fn unit_len(rest: &str) -> usize {
    static UNIT: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let unit = UNIT.get_or_init(|| {
        Regex::new(r"^,?\s+(?i:apt\.?|apartment|suite|ste\.?|unit|room|rm\.?|bldg\.?|floor|fl\.?|#)\s*#?[A-Za-z0-9\-]*[0-9][A-Za-z0-9\-]*")
            .expect("unit pattern compiles")
    });
    unit.find(rest).map_or(0, |m| m.end())
}

/// Within `window` bytes before `at`, on the same line, one of `words`
/// appears as a whole word (ASCII case-insensitive).
pub(crate) fn preceded_by(text: &str, at: usize, window: usize, words: &[&str]) -> bool {
    let mut from = at.saturating_sub(window);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let before = &text[from..at];
    let line = before.rsplit('\n').next().unwrap_or(before);
    let lower = line.to_ascii_lowercase();
    let lb = lower.as_bytes();
    words.iter().any(|w| {
        lower.match_indices(w).any(|(i, _)| {
            (i == 0 || !lb[i - 1].is_ascii_alphanumeric())
                && lb.get(i + w.len()).is_none_or(|b| !b.is_ascii_alphabetic())
        })
    })
}

fn touches_digit(bytes: &[u8], start: usize, end: usize) -> bool {
    (start > 0 && bytes[start - 1].is_ascii_digit()) || bytes.get(end).is_some_and(u8::is_ascii_digit)
}

/// The match is part of a longer dotted number such as a version 12.15.0.88.
fn dotted_number(bytes: &[u8], start: usize, end: usize) -> bool {
    (start >= 2 && bytes[start - 1] == b'.' && bytes[start - 2].is_ascii_digit())
        || (bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit))
}
