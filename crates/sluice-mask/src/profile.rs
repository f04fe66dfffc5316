//! Masking profiles: a strategy per class, and rewriting a text given its
//! spans.
//!
//! Owns: `Strategy`, `Profile` (the built-in `safe_harbor` and `unmasked`
//! profiles), and the replacement text of each strategy.

use crate::detect::Span;
use crate::lexicon::Lexicon;
use crate::{ClassCounts, MaskError, PhiClass};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::borrow::Cow;
use std::fmt::Write as _;

/// How the values of one class are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// A fixed token naming the class: `[SSN]`.
    Redact,
    /// Keep the last four letters or digits, star the others:
    /// `***-**-6789`.
    Partial,
    /// `[NAME:1f3a9c0b2d4e6a58]`: HMAC-SHA256 of the class and value under
    /// the profile's key, so equal values stay equal (joins and counts work)
    /// and nobody without the key can reverse or confirm a guess.
    Pseudonym,
    /// Keep what Safe Harbor allows: a date's year, a ZIP's first three
    /// digits (`000` for restricted areas), `90+` for an age. Other classes
    /// are redacted.
    Generalize,
    /// Leave the value as it is.
    Keep,
}

impl std::str::FromStr for Strategy {
    type Err = MaskError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "redact" => Strategy::Redact,
            "partial" => Strategy::Partial,
            "pseudonym" => Strategy::Pseudonym,
            "generalize" => Strategy::Generalize,
            "keep" => Strategy::Keep,
            other => return Err(MaskError::UnknownStrategy(other.to_string())),
        })
    }
}

/// A masking profile: one strategy per class, and the pseudonym key.
#[derive(Clone)]
pub struct Profile {
    name: String,
    strategies: [Strategy; PhiClass::COUNT],
    /// HMAC key for `Pseudonym`; required before any class uses it.
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: say only whether there is one.
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("strategies", &self.strategies)
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Profile {
    /// The built-in profile names, for `--profile` and config validation.
    pub const BUILT_IN: [&'static str; 2] = ["safe_harbor", "unmasked"];

    /// HIPAA Safe Harbor (45 CFR 164.514(b)(2)): dates keep their year,
    /// ZIPs their first three digits (`000` in restricted areas), ages over
    /// 89 become `90+`; every other class is redacted.
    pub fn safe_harbor() -> Profile {
        let mut strategies = [Strategy::Redact; PhiClass::COUNT];
        for class in [PhiClass::Date, PhiClass::Zip, PhiClass::Age90Plus] {
            strategies[class as usize] = Strategy::Generalize;
        }
        Profile { name: "safe_harbor".into(), strategies, key: None }
    }

    /// Everything in the clear: for privileged groups; its use is to be
    /// recorded by the caller.
    pub fn unmasked() -> Profile {
        Profile { name: "unmasked".into(), strategies: [Strategy::Keep; PhiClass::COUNT], key: None }
    }

    /// A built-in profile by name.
    pub fn built_in(name: &str) -> Result<Profile, MaskError> {
        match name {
            "safe_harbor" => Ok(Profile::safe_harbor()),
            "unmasked" => Ok(Profile::unmasked()),
            other => Err(MaskError::UnknownProfile(other.to_string())),
        }
    }

    /// A copy named `name`, for profiles built from a built-in one.
    pub fn renamed(mut self, name: &str) -> Profile {
        self.name = name.to_string();
        self
    }

    /// Sets the HMAC-SHA256 key for pseudonyms.
    pub fn with_key(mut self, key: &[u8]) -> Profile {
        self.key = Some(key.to_vec());
        self
    }

    /// Sets the strategy of one class. `Pseudonym` needs a key first.
    pub fn with_strategy(mut self, class: PhiClass, strategy: Strategy) -> Result<Profile, MaskError> {
        if strategy == Strategy::Pseudonym && self.key.is_none() {
            return Err(MaskError::NoPseudonymKey(self.name));
        }
        self.strategies[class as usize] = strategy;
        Ok(self)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn strategy(&self, class: PhiClass) -> Strategy {
        self.strategies[class as usize]
    }

    /// Nothing is rewritten under this profile: callers may skip detection.
    pub fn is_unmasked(&self) -> bool {
        self.strategies.iter().all(|s| *s == Strategy::Keep)
    }

    /// `text` with each span rewritten by its class's strategy; borrowed
    /// when nothing changes. Counts each rewritten span in `counts`.
    pub fn apply<'a>(&self, text: &'a str, spans: &[Span], counts: &mut ClassCounts) -> Cow<'a, str> {
        let mut out: Option<String> = None;
        let mut copied = 0;
        for span in spans {
            let strategy = self.strategy(span.class);
            if strategy == Strategy::Keep || span.start < copied || span.end > text.len() {
                continue;
            }
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
            buf.push_str(&text[copied..span.start]);
            self.replace(span.class, strategy, &text[span.start..span.end], buf);
            copied = span.end;
            counts.add(span.class);
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut buf) => {
                buf.push_str(&text[copied..]);
                Cow::Owned(buf)
            }
        }
    }

    /// Appends the replacement of one value to `out`.
    fn replace(&self, class: PhiClass, strategy: Strategy, value: &str, out: &mut String) {
        match strategy {
            Strategy::Keep => out.push_str(value),
            Strategy::Redact => redact(class, out),
            Strategy::Partial => partial(value, out),
            Strategy::Pseudonym => match &self.key {
                Some(key) => pseudonym(key, class, value, out),
                // with_strategy refuses Pseudonym without a key.
                None => redact(class, out),
            },
            Strategy::Generalize => generalize(class, value, out),
        }
    }
}

fn redact(class: PhiClass, out: &mut String) {
    out.push('[');
    out.push_str(class.as_str());
    out.push(']');
}

fn partial(value: &str, out: &mut String) {
    let alnum = value.chars().filter(|c| c.is_alphanumeric()).count();
    let mut seen = 0;
    for c in value.chars() {
        if c.is_alphanumeric() {
            seen += 1;
            let keep = alnum > 4 && seen + 4 > alnum;
            out.push(if keep { c } else { '*' });
        } else {
            out.push(c);
        }
    }
}

fn pseudonym(key: &[u8], class: PhiClass, value: &str, out: &mut String) {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(class.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    out.push('[');
    out.push_str(class.as_str());
    out.push(':');
    for b in &digest[..8] {
        let _ = write!(out, "{b:02x}");
    }
    out.push(']');
}

fn generalize(class: PhiClass, value: &str, out: &mut String) {
    match class {
        PhiClass::Date => match year_of(value) {
            Some(year) => out.push_str(year),
            None => redact(class, out),
        },
        PhiClass::Zip => {
            let digits: String = value.chars().filter(char::is_ascii_digit).take(3).collect();
            if digits.len() == 3 && !Lexicon::get().is_restricted_zip3(&digits) {
                out.push_str(&digits);
            } else {
                out.push_str("000");
            }
        }
        PhiClass::Age90Plus => out.push_str("90+"),
        _ => redact(class, out),
    }
}

/// The four-digit year in a date value (1850–2100), if it has one.
fn year_of(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    (0..bytes.len().saturating_sub(3)).find_map(|i| {
        let run = &bytes[i..i + 4];
        let bounded =
            (i == 0 || !bytes[i - 1].is_ascii_digit()) && bytes.get(i + 4).is_none_or(|b| !b.is_ascii_digit());
        let year = std::str::from_utf8(run).ok()?.parse::<u32>().ok()?;
        (bounded && run.iter().all(u8::is_ascii_digit) && (1850..=2100).contains(&year)).then(|| &value[i..i + 4])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(profile: &Profile, class: PhiClass, value: &str) -> String {
        let spans = [Span { start: 0, end: value.len(), class }];
        profile.apply(value, &spans, &mut ClassCounts::default()).into_owned()
    }

    #[test]
    fn safe_harbor_generalises_dates_zips_ages() {
        let p = Profile::safe_harbor();
        assert_eq!(one(&p, PhiClass::Date, "04/26/1988"), "1988");
        assert_eq!(one(&p, PhiClass::Date, "July 5th"), "[DATE]");
        assert_eq!(one(&p, PhiClass::Zip, "02139-1234"), "021");
        assert_eq!(one(&p, PhiClass::Zip, "03601"), "000", "036 is a restricted ZIP3");
        assert_eq!(one(&p, PhiClass::Age90Plus, "93"), "90+");
        assert_eq!(one(&p, PhiClass::Ssn, "123-45-6789"), "[SSN]");
    }

    #[test]
    fn partial_keeps_last_four() {
        let p = Profile::safe_harbor().with_strategy(PhiClass::Ssn, Strategy::Partial).unwrap();
        assert_eq!(one(&p, PhiClass::Ssn, "123-45-6789"), "***-**-6789");
        assert_eq!(one(&p, PhiClass::Ssn, "12"), "**");
    }

    #[test]
    fn pseudonyms_are_deterministic_and_keyed() {
        assert!(Profile::safe_harbor().with_strategy(PhiClass::Name, Strategy::Pseudonym).is_err());
        let a = Profile::safe_harbor().with_key(b"k1").with_strategy(PhiClass::Name, Strategy::Pseudonym).unwrap();
        let b = Profile::safe_harbor().with_key(b"k2").with_strategy(PhiClass::Name, Strategy::Pseudonym).unwrap();
        assert_eq!(one(&a, PhiClass::Name, "Smith"), one(&a, PhiClass::Name, "Smith"));
        assert_ne!(one(&a, PhiClass::Name, "Smith"), one(&a, PhiClass::Name, "Smyth"));
        assert_ne!(one(&a, PhiClass::Name, "Smith"), one(&b, PhiClass::Name, "Smith"));
        assert!(one(&a, PhiClass::Name, "Smith").starts_with("[NAME:"));
        assert!(!format!("{a:?}").contains("k1"), "the key is not printed");
    }

    #[test]
    fn clean_text_is_borrowed_and_unmasked_keeps_everything() {
        let mut counts = ClassCounts::default();
        assert!(matches!(Profile::safe_harbor().apply("clean", &[], &mut counts), Cow::Borrowed(_)));
        let spans = [Span { start: 0, end: 5, class: PhiClass::Name }];
        assert!(matches!(Profile::unmasked().apply("Smith", &spans, &mut counts), Cow::Borrowed(_)));
        assert_eq!(counts.total(), 0);
    }
}
