//! `sluice mask` against the built binary: JSONL in, one line out per
//! record in order, `--spans` with UTF-8 byte offsets, `--text`,
//! `--profile`, `--config` with a configured profile, and a bad line
//! failing with its line number.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn mask(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("mask")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const RECORDS: &str = concat!(
    r#"{"id": "a", "kind": "note", "text": "Patient: Zoë Morrison, SSN 123-45-6789, ICD-10 C50.911", "spans": []}"#,
    "\n",
    r#"{"id": 2, "text": "{\"patient_name\": \"Ann Lee\", \"state\": \"WA\", \"dob\": \"1950-03-04\"}"}"#,
    "\n",
    r#"{"id": "c", "text": "nothing to see here"}"#,
    "\n",
);

#[test]
fn masked_lines_keep_order_and_text_outside_values() {
    let out = lines(&mask(&[], RECORDS));
    assert_eq!(out.len(), 3);
    assert_eq!(out[0]["id"], "a");
    assert_eq!(out[0]["masked"], "Patient: [NAME] [NAME], SSN [SSN], ICD-10 C50.911");
    assert_eq!(out[1]["id"], 2);
    assert_eq!(out[1]["masked"], r#"{"patient_name": "[NAME]", "state": "WA", "dob": "1950"}"#);
    assert_eq!(out[2]["masked"], "nothing to see here");
}

#[test]
fn spans_are_utf8_byte_offsets() {
    let out = lines(&mask(&["--spans"], RECORDS));
    let text = "Patient: Zoë Morrison, SSN 123-45-6789, ICD-10 C50.911";
    assert_eq!(out[0]["offset_unit"], "utf8");
    let spans = out[0]["spans"].as_array().unwrap();
    let texts: Vec<(&str, &str)> = spans
        .iter()
        .map(|s| {
            let (a, b) = (s["start"].as_u64().unwrap() as usize, s["end"].as_u64().unwrap() as usize);
            (&text[a..b], s["type"].as_str().unwrap())
        })
        .collect();
    assert_eq!(texts, [("Zoë", "NAME"), ("Morrison", "NAME"), ("123-45-6789", "SSN")]);
    assert!(out[2]["spans"].as_array().unwrap().is_empty());
}

#[test]
fn plain_text_and_unmasked_profile() {
    let out = mask(&["--text"], "call 617-555-0123\nno phi\n");
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "call [PHONE]\nno phi\n");
    let out = lines(&mask(&["--profile", "unmasked"], RECORDS));
    assert_eq!(out[0]["masked"], "Patient: Zoë Morrison, SSN 123-45-6789, ICD-10 C50.911");
}

#[test]
fn bad_line_and_unknown_profile_fail_clearly() {
    let out = mask(&[], "{\"id\": 1, \"text\": \"a\"}\nnot json\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1, "the good line before it is written");
    let out = mask(&["--profile", "nope"], RECORDS);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn a_configured_pseudonym_profile_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pseudonym.key"), "0123456789abcdef0123456789abcdef\n").unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[listeners]\npostgres = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite://x.db\"\n\
         [masking]\npseudonym_key_file = \"pseudonym.key\"\n\
         [masking.profiles.research]\nstrategies = { NAME = \"pseudonym\", SSN = \"partial\" }\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let args = ["--config", config, "--profile", "research"];
    let first = lines(&mask(&args, RECORDS));
    let masked = first[0]["masked"].as_str().unwrap();
    let token = masked.strip_prefix("Patient: [NAME:").expect(masked);
    assert!(token.len() > 17 && token.as_bytes()[..16].iter().all(u8::is_ascii_hexdigit), "{masked}");
    assert_eq!(&token[16..17], "]", "{masked}");
    assert!(masked.ends_with(", SSN ***-**-6789, ICD-10 C50.911"), "{masked}");
    assert_eq!(first, lines(&mask(&args, RECORDS)), "the same key gives the same pseudonyms");

    let out = mask(&["--config", config, "--profile", "nope"], RECORDS);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no masking profile `nope`"));
}
