//! Word lists shipped as data (see `data/README.md` for their sources) and
//! the lookups over them.
//!
//! Owns: parsing the lists once per process, case-insensitive membership
//! tests that do not allocate.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::sync::OnceLock;

/// FNV-1a: a fast hash for short keys from fixed lists or column names
/// (not attacker-chosen keys of a growing map), used for the word lists and
/// the column-rule memo.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type WordSet = HashSet<&'static str, BuildHasherDefault<Fnv>>;

/// The lists, parsed once.
#[derive(Debug)]
pub(crate) struct Lexicon {
    given: WordSet,
    surnames: WordSet,
    not_names: WordSet,
    street_suffixes: WordSet,
    zip3_restricted: WordSet,
}

/// US states, DC and territories as USPS abbreviations, upper case.
pub(crate) const STATE_CODES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA",
    "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR",
    "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "PR", "GU", "VI", "AS", "MP",
];

/// US state names, as written in addresses.
pub(crate) const STATE_NAMES: [&str; 51] = [
    "Alabama",
    "Alaska",
    "Arizona",
    "Arkansas",
    "California",
    "Colorado",
    "Connecticut",
    "Delaware",
    "District of Columbia",
    "Florida",
    "Georgia",
    "Hawaii",
    "Idaho",
    "Illinois",
    "Indiana",
    "Iowa",
    "Kansas",
    "Kentucky",
    "Louisiana",
    "Maine",
    "Maryland",
    "Massachusetts",
    "Michigan",
    "Minnesota",
    "Mississippi",
    "Missouri",
    "Montana",
    "Nebraska",
    "Nevada",
    "New Hampshire",
    "New Jersey",
    "New Mexico",
    "New York",
    "North Carolina",
    "North Dakota",
    "Ohio",
    "Oklahoma",
    "Oregon",
    "Pennsylvania",
    "Rhode Island",
    "South Carolina",
    "South Dakota",
    "Tennessee",
    "Texas",
    "Utah",
    "Vermont",
    "Virginia",
    "Washington",
    "West Virginia",
    "Wisconsin",
    "Wyoming",
];

fn words(text: &'static str) -> WordSet {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

impl Lexicon {
    pub(crate) fn get() -> &'static Lexicon {
        static LEXICON: OnceLock<Lexicon> = OnceLock::new();
        LEXICON.get_or_init(|| Lexicon {
            given: words(include_str!("../data/given_names.txt")),
            surnames: words(include_str!("../data/surnames.txt")),
            not_names: words(include_str!("../data/not_names.txt")),
            street_suffixes: words(include_str!("../data/street_suffixes.txt")),
            zip3_restricted: words(include_str!("../data/zip3_restricted.txt")),
        })
    }

    /// `word` is a known given name or surname and not a listed common word.
    pub(crate) fn is_name(&self, word: &str) -> bool {
        with_lower(word, |w| (self.given.contains(w) || self.surnames.contains(w)) && !self.not_names.contains(w))
    }

    /// `word` is listed as a common word that is not a person's name.
    pub(crate) fn is_not_name(&self, word: &str) -> bool {
        with_lower(word, |w| self.not_names.contains(w))
    }

    pub(crate) fn is_street_suffix(&self, word: &str) -> bool {
        with_lower(word.trim_end_matches('.'), |w| self.street_suffixes.contains(w))
    }

    /// The first three digits of a ZIP belong to an area of 20,000 people
    /// or fewer.
    pub(crate) fn is_restricted_zip3(&self, zip3: &str) -> bool {
        self.zip3_restricted.contains(zip3)
    }
}

pub(crate) fn is_state_code(word: &str) -> bool {
    word.len() == 2 && STATE_CODES.contains(&word)
}

pub(crate) fn is_state_name(word: &str) -> bool {
    STATE_NAMES.iter().any(|s| s.eq_ignore_ascii_case(word))
}

/// Calls `f` with `word` in lower case, using a stack buffer (no
/// allocation) for words up to 64 bytes; longer words are never in a list.
fn with_lower(word: &str, f: impl FnOnce(&str) -> bool) -> bool {
    let mut buf = [0u8; 64];
    let mut len = 0;
    for c in word.chars().flat_map(char::to_lowercase) {
        let n = c.len_utf8();
        if len + n > buf.len() {
            return false;
        }
        c.encode_utf8(&mut buf[len..len + n]);
        len += n;
    }
    std::str::from_utf8(&buf[..len]).is_ok_and(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_not_names() {
        let lex = Lexicon::get();
        assert!(lex.is_name("Morrison"));
        assert!(lex.is_name("BRIAN"));
        assert!(!lex.is_name("Patient"), "common words are filtered");
        assert!(!lex.is_name("Parkinson"), "eponyms are filtered");
        assert!(lex.is_street_suffix("St."));
        assert!(lex.is_restricted_zip3("036"));
        assert!(!lex.is_restricted_zip3("021"));
        assert!(is_state_code("WA") && !is_state_code("Wa"));
        assert!(is_state_name("new york"));
    }

    #[test]
    fn long_words_are_not_names() {
        assert!(!Lexicon::get().is_name(&"a".repeat(200)));
    }
}
