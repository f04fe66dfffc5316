//! A seeded random loop: masking random strings (bytes, pieces of PHI and
//! JSON) never panics, returns spans on character boundaries in order, and
//! never changes text outside the spans.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_mask::{ClassCounts, Detector, PhiClass, Profile, Strategy};

const PIECES: &[&str] = &[
    "Patient: ",
    "Dr. ",
    "Mr. ",
    "MRN ",
    "SSN ",
    "123-45-6789",
    "617-555-0123",
    "+44 20 7946 0958",
    "a@b.org",
    "https://x.org/p",
    "10.0.0.1",
    "fe80::1",
    "04/26/1988",
    "Sep 20, 2022",
    "93 yo",
    "Morrison",
    "Zoë",
    "Brian",
    "{\"name\": \"",
    "\", ",
    "\"}",
    "[",
    "]",
    "MSH|",
    "\rPID|",
    "|",
    "^",
    "12 Main Street Apt. 4",
    ", WI 53202",
    "\\",
    "\"",
    " ",
    "\n",
    "é",
    "📞",
    "1M8GDM9AXKP042788",
    "(01)09587607800398(21)X",
    "C50.911",
    "70450",
];

fn random_text(rng: &mut StdRng) -> String {
    let mut s = String::new();
    for _ in 0..rng.random_range(0..40) {
        if rng.random_bool(0.3) {
            let n = rng.random_range(1..8);
            s.extend((0..n).map(|_| char::from_u32(rng.random_range(0..0x3000)).unwrap_or('?')));
        } else {
            s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
        }
    }
    s
}

#[test]
fn random_texts_never_panic_and_keep_text_outside_spans() {
    let detector = Detector::new();
    let mut redact = Profile::safe_harbor();
    for class in PhiClass::ALL {
        redact = redact.with_strategy(class, Strategy::Redact).unwrap();
    }
    let mixed = Profile::safe_harbor()
        .with_key(b"fuzz")
        .with_strategy(PhiClass::Name, Strategy::Pseudonym)
        .and_then(|p| p.with_strategy(PhiClass::Ssn, Strategy::Partial))
        .unwrap();
    let mut rng = StdRng::seed_from_u64(0x51ce);
    for _ in 0..5_000 {
        let text = random_text(&mut rng);
        let spans = detector.detect(&text);
        let mut expected = String::new();
        let mut last = 0;
        for s in &spans {
            assert!(s.start >= last && s.start < s.end && s.end <= text.len(), "{text:?} {spans:?}");
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end), "{text:?} {spans:?}");
            expected.push_str(&text[last..s.start]);
            expected.push_str(&format!("[{}]", s.class));
            last = s.end;
        }
        expected.push_str(&text[last..]);
        let mut counts = ClassCounts::default();
        assert_eq!(redact.apply(&text, &spans, &mut counts), expected, "{text:?}");
        assert_eq!(counts.total(), spans.len() as u64);
        let _ = mixed.apply(&text, &spans, &mut ClassCounts::default());
    }
}
