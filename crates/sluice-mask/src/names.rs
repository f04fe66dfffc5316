//! Person names in free text: census given-name and surname dictionaries,
//! cue words before a name ("Patient:", "Dr.", "Mr./Ms.", "seen by",
//! "daughter"), and propagation of a name found once to its other mentions
//! in the same text.
//!
//! Owns: splitting text into capitalised-word runs and deciding which words
//! of a run are names.

use crate::PhiClass;
use crate::detect::Span;
use crate::lexicon::{self, Lexicon};

/// Titles: the capitalised words after one are a name whatever they are
/// ("Dr. Sick").
const TITLES: &[&str] = &["dr", "dr.", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "miss", "mx.", "prof."];

/// Labels and relationships: the capitalised words after one are a name
/// unless they are listed common words or written in capitals.
const CUES: &[&str] = &[
    "patient:",
    "patient",
    "pt:",
    "name:",
    "name",
    "name -",
    "re:",
    "dear",
    "seen by",
    "cc:",
    "attending:",
    "attending",
    "pcp",
    "pcp:",
    "pcp -",
    "provider:",
    "physician:",
    "surgeon:",
    "referred by",
    "referring",
    "signed by",
    "dictated by",
    "daughter",
    "son",
    "wife",
    "husband",
    "mother",
    "father",
    "sister",
    "brother",
    "niece",
    "nephew",
    "caregiver",
    "guardian",
    "partner",
    "spouse",
    "friend",
    "grandson",
    "granddaughter",
    "grandmother",
    "grandfather",
    "aunt",
    "uncle",
    "cousin",
    "contact:",
    "from",
    "by",
    "with",
    "nurse",
    "np",
    "md",
];

/// Words after a name that make it an eponym, not a person ("Graves'
/// disease", "Bell palsy", "Glasgow Coma Scale").
const EPONYM_NOUNS: &[&str] = &[
    "disease",
    "syndrome",
    "sign",
    "signs",
    "test",
    "scale",
    "score",
    "criteria",
    "fracture",
    "cyst",
    "palsy",
    "phenomenon",
    "maneuver",
    "manoeuvre",
    "procedure",
    "catheter",
    "monitor",
    "esophagus",
    "sarcoma",
    "lymphoma",
    "thyroiditis",
    "chorea",
    "disorder",
    "reflex",
    "classification",
    "tube",
    "operation",
    "repair",
    "point",
    "law",
    "coma",
    "fundoplication",
    "ulcer",
    "node",
    "nodes",
    "hernia",
    "anomaly",
    "triad",
    "tumor",
    "tumour",
];

/// One word of the text: byte range, and what it looks like.
#[derive(Debug, Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
}

/// Finds names in `text`, appending spans with `base` added.
pub(crate) fn scan(text: &str, base: usize, out: &mut Vec<Span>) {
    if !text.chars().any(char::is_uppercase) {
        return;
    }
    let lex = Lexicon::get();
    // Every name run has a word after a cue, a dictionary name, or a
    // non-ASCII capitalised word; a text with none allocates nothing.
    let candidate = |w: Word| {
        let word = &text[w.start..w.end];
        name_like(text, w)
            && (known_name(lex, word)
                || (shouting(word) && (lex.is_name(word) || !word.is_ascii()))
                || cue_before(text, w.start, TITLES)
                || cue_before(text, w.start, CUES))
    };
    if !words(text).any(candidate) {
        return;
    }
    let first_found = out.len();
    let words: Vec<Word> = words(text).collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if !name_like(text, w) {
            i += 1;
            continue;
        }
        // A run: capitalised words separated by one space (or ". " after an initial).
        let mut j = i + 1;
        // A cue word written capitalised ("Dear", "Per") ends the run before it.
        let is_cue_next = |k: usize| cue_before(text, words[k].start, TITLES) || cue_before(text, words[k].start, CUES);
        while j < words.len()
            && j - i < 4
            && name_like(text, words[j])
            && joined(text, words[j - 1], words[j])
            && !is_cue_next(j)
        {
            j += 1;
        }
        let run = &words[i..j];
        let title = cue_before(text, w.start, TITLES);
        let strong = title || cue_before(text, w.start, CUES);
        let eponym = eponym_after(text, run[run.len() - 1].end);
        let any_known = run.iter().any(|w| known_name(lex, &text[w.start..w.end]));
        let state_pair = |k: usize| {
            run.get(k + 1).is_some_and(|next| lexicon::is_state_name(&text[run[k].start..next.end]))
                || (k > 0 && lexicon::is_state_name(&text[run[k - 1].start..run[k].end]))
        };
        // "Last, First" written out: both sides capitalised, one side a name
        // or after a cue ("KING, JEMMA", "Name: Zamora, Eloy").
        let comma_next = (j < words.len() && text[run[run.len() - 1].end..words[j].start] == *", ")
            .then(|| words[j])
            .filter(|next| capitalised(&text[next.start..next.end]) && line_ends_after(text, next.end));
        let shouted_names = run.iter().filter(|w| {
            let word = &text[w.start..w.end];
            lex.is_name(word) || (!word.is_ascii() && word.chars().count() > 1)
        });
        let all_caps = run.iter().all(|w| shouting(&text[w.start..w.end]) || w.end - w.start == 1);
        let all_caps_names =
            all_caps && (run.len() >= 2 || comma_next.is_some()) && 2 * shouted_names.count() >= run.len();
        let last_first = comma_next.is_some_and(|next| {
            let first = &text[next.start..next.end];
            strong || all_caps_names || lex.is_name(first) || !first.is_ascii()
        });
        if !eponym && (strong || any_known || all_caps_names || last_first) {
            for (k, w) in run.iter().enumerate() {
                let word = &text[w.start..w.end];
                let initial = word.chars().count() == 1;
                let skip = if initial {
                    false
                } else if lexicon::is_state_code(word) || lexicon::is_state_name(word) || state_pair(k) {
                    true
                } else if strong || last_first {
                    // After a cue: anything but a lone common word, or a short
                    // all-capitals abbreviation (DOB, MRN, RN, NP).
                    (run.len() == 1 && !title && !last_first && lex.is_not_name(word))
                        || (shouting(word) && word.chars().count() <= 3 && !lex.is_name(word) && !all_caps_names)
                } else {
                    // Between or after dictionary names a common word is a name
                    // too ("Trevor Amber Simpson", "Carrie Green").
                    let inside = k > 0 && run[..k].iter().any(|w| known_name(lex, &text[w.start..w.end]));
                    (lex.is_not_name(word) && !inside) || (shouting(word) && !all_caps_names && !lex.is_name(word))
                };
                if skip {
                    continue;
                }
                let end = if initial && text[w.end..].starts_with('.') { w.end + 1 } else { w.end };
                out.push(Span { start: base + w.start, end: base + end, class: PhiClass::Name });
            }
            if let Some(next) = comma_next.filter(|_| last_first || strong) {
                let word = &text[next.start..next.end];
                let credential = shouting(word) && word.chars().count() <= 4 && !lex.is_name(word);
                let state = lexicon::is_state_code(word) || lexicon::is_state_name(word);
                if !credential && !state {
                    out.push(Span { start: base + next.start, end: base + next.end, class: PhiClass::Name });
                    j += 1;
                }
            }
        }
        i = j;
    }
    propagate(text, base, &words, first_found, out);
}

/// Other mentions of a word already found as a name are names too
/// ("Patient: Brian Morrison ... Morrison grew up").
fn propagate(text: &str, base: usize, words: &[Word], first_found: usize, out: &mut Vec<Span>) {
    if out.len() == first_found {
        return;
    }
    let found: Vec<&str> = out[first_found..]
        .iter()
        .map(|s| &text[s.start - base..s.end - base])
        .filter(|w| w.chars().count() > 2)
        .collect();
    let mut extra = Vec::new();
    for w in words {
        let word = &text[w.start..w.end];
        if capitalised(word) && found.contains(&word) && !out[first_found..].iter().any(|s| s.start == base + w.start) {
            extra.push(Span { start: base + w.start, end: base + w.end, class: PhiClass::Name });
        }
    }
    out.extend(extra);
}

/// The words of a text, in order, without allocating.
#[derive(Debug)]
struct Words<'a> {
    text: &'a str,
    chars: std::str::CharIndices<'a>,
    prev: char,
}

fn words(text: &str) -> Words<'_> {
    Words { text, chars: text.char_indices(), prev: '\0' }
}

impl Iterator for Words<'_> {
    type Item = Word;

    fn next(&mut self) -> Option<Word> {
        let mut start = None;
        for (i, c) in self.chars.by_ref() {
            let inner = (c == '\'' || c == '’' || c == '-') && self.prev.is_alphabetic();
            self.prev = c;
            if c.is_alphabetic() || (inner && start.is_some()) {
                start.get_or_insert(i);
            } else if let Some(s) = start {
                return Some(trimmed(self.text, s, i));
            }
        }
        start.map(|s| trimmed(self.text, s, self.text.len()))
    }
}

/// Drops a trailing apostrophe, hyphen or possessive `'s` from a word.
fn trimmed(text: &str, start: usize, mut end: usize) -> Word {
    for suffix in ["'s", "’s", "'", "’", "-"] {
        if text[start..end].ends_with(suffix) && end - suffix.len() > start {
            end -= suffix.len();
        }
    }
    Word { start, end }
}

fn capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

/// A capitalised word that can be part of a name run: a single letter
/// counts only as an initial after a space or at the start ("mmol/L" is a
/// unit, "Brian L. Morrison" has an initial).
fn name_like(text: &str, w: Word) -> bool {
    let word = &text[w.start..w.end];
    capitalised(word)
        && (word.chars().nth(1).is_some() || text[..w.start].chars().next_back().is_none_or(char::is_whitespace))
}

/// Two words of one run: one space or tab between them, or ". " after an
/// initial.
fn joined(text: &str, a: Word, b: Word) -> bool {
    let gap = &text[a.end..b.start];
    gap == " " || gap == "\t" || (gap == ". " && text[a.start..a.end].chars().count() == 1)
}

fn known_name(lex: &Lexicon, word: &str) -> bool {
    let non_ascii = !word.is_ascii() && word.chars().count() > 1;
    let mixed_case = word.chars().skip(1).any(char::is_lowercase);
    (lex.is_name(word) || non_ascii) && mixed_case && !lex.is_not_name(word)
}

/// All capitals, more than one letter.
fn shouting(word: &str) -> bool {
    word.chars().count() > 1 && !word.chars().any(char::is_lowercase)
}

fn cue_before(text: &str, at: usize, cues: &[&str]) -> bool {
    let mut from = at.saturating_sub(24);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let before = text[from..at].trim_end_matches([' ', '\t']);
    let lower_last = |cue: &str| {
        before.len() >= cue.len()
            && before.is_char_boundary(before.len() - cue.len())
            && before[before.len() - cue.len()..].eq_ignore_ascii_case(cue)
            && before[..before.len() - cue.len()].chars().next_back().is_none_or(|c| !c.is_alphanumeric())
    };
    cues.iter().any(|c| lower_last(c))
}

fn eponym_after(text: &str, end: usize) -> bool {
    let rest = &text[end..];
    let rest = rest.strip_prefix("'s").or_else(|| rest.strip_prefix("’s")).unwrap_or(rest);
    let possessive = rest.len() != text.len() - end || rest.starts_with('\'') || rest.starts_with('’');
    let rest = rest.trim_start_matches(['\'', '’', ' ', '-']);
    let next: String = rest.chars().take_while(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect();
    EPONYM_NOUNS.contains(&next.as_str()) || (possessive && next.is_empty())
}

fn line_ends_after(text: &str, end: usize) -> bool {
    text[end..].chars().next().is_none_or(|c| matches!(c, '\n' | '\r' | '.' | ',' | ';' | '|' | '"' | ' ' | '\t'))
}
