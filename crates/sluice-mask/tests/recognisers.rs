//! Table tests of the recognisers: each row is a text, what must be
//! masked in it and what must stay visible.

use sluice_mask::{ClassCounts, Detector, Masker, PhiClass, Span};

fn found(text: &str) -> Vec<(String, PhiClass)> {
    Detector::new().detect(text).iter().map(|s| (text[s.start..s.end].to_string(), s.class)).collect()
}

/// Every `must` string is inside a span, no `never` string overlaps one.
fn check(text: &str, must: &[&str], never: &[&str]) {
    let spans = Detector::new().detect(text);
    let covered = |needle: &str| {
        let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in {text:?}"));
        spans.iter().any(|s| s.start <= at && at + needle.len() <= s.end)
    };
    let touched = |needle: &str| {
        let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in {text:?}"));
        spans.iter().any(|s| s.start < at + needle.len() && at < s.end)
    };
    for m in must {
        assert!(covered(m), "{m:?} not masked in {text:?}; found {:?}", found(text));
    }
    for n in never {
        assert!(!touched(n), "{n:?} masked in {text:?}; found {:?}", found(text));
    }
}

#[test]
fn identifiers_with_validators() {
    check("SSN 123-45-6789 on file", &["123-45-6789"], &["file"]);
    check("ref 666-45-6789 and 000-12-3456", &[], &["666-45-6789", "000-12-3456"]);
    check("vehicle 1M8GDM9AXKP042788 parked", &["1M8GDM9AXKP042788"], &["parked"]);
    check("code 1M8GDM9A1KP042788 wrong check digit", &[], &["1M8GDM9A1KP042788"]);
    check("beneficiary 1EG4-TE5-MK73 active", &["1EG4-TE5-MK73"], &["active"]);
    check("prescriber AB1234563 signed", &["AB1234563"], &[]);
    check("prescriber AB1234564 signed", &[], &["AB1234564"]);
    check("NPI 1234567893 billing", &["1234567893"], &[]);
    check("NPI 1234567894 billing", &[], &["1234567894"]);
    check("UDI (01)09587607800398(21)WSN040334K noted", &["(01)09587607800398(21)WSN040334K"], &["noted"]);
    check("MAC 00:1A:2B:3C:4D:5E seen", &["00:1A:2B:3C:4D:5E"], &[]);
}

#[test]
fn contact_details() {
    check("call 617-555-0123 or (617) 555-0199 x12", &["617-555-0123", "(617) 555-0199 x12"], &["call"]);
    check("mobile +44 161 209 8344 today", &["+44 161 209 8344"], &["today"]);
    check("fax +91 65956 41906", &["+91 65956 41906"], &[]);
    check("mail jo.smith+x@mail.example.org now", &["jo.smith+x@mail.example.org"], &["now"]);
    check("portal https://portal.example.com/p/123?x=1. Next", &["https://portal.example.com/p/123?x=1"], &["Next"]);
    check("from IP 10.20.30.40 and fe80::1ff:fe23:4567:890a", &["10.20.30.40", "fe80::1ff:fe23:4567:890a"], &[]);
    assert_eq!(found("call 617-555-0123 now")[0].1, PhiClass::Phone);
    assert_eq!(found("fax 617-555-0123 now")[0].1, PhiClass::Fax);
}

#[test]
fn context_identifiers() {
    check("MRN: 9920150527 seen", &["9920150527"], &[]);
    check("Acct #: 621297264891", &["621297264891"], &[]);
    check("Medicare beneficiary ID DN17918X; billing account 8049-0272-76.", &["DN17918X", "8049-0272-76"], &[]);
    check("Driver's license G736-7093-9611 on file", &["G736-7093-9611"], &[]);
    check("plate SQK-9651, serial QUZG-73996-W", &["SQK-9651", "QUZG-73996-W"], &[]);
    check("Study ID ST-88231 enrolled", &["ST-88231"], &[]);
    check("SSN - 646 44 3109", &["646 44 3109"], &[]);
    check("the account was closed", &[], &["closed"]);
}

#[test]
fn dates_and_ages() {
    check(
        "DOB: 04/26/1988, seen Sep 20, 2022 and 02-Nov-2018, on July 5th, 2019-03-01, 5th of March 2020",
        &["04/26/1988", "Sep 20, 2022", "02-Nov-2018", "July 5th", "2019-03-01", "5th of March 2020"],
        &[],
    );
    check("a 93 yo man, Age: 101", &["93", "101"], &["man"]);
    check("a 57 yo man, age 45, in 2019, at 3:17 AM, BP 120/80", &[], &["57", "45", "2019", "3:17", "120/80"]);
    check("firmware 12.15.0.88 and 6.20.4.24", &[], &["12.15.0.88", "6.20.4.24"]);
    check("you may 5 times", &[], &["may 5"]);
}

#[test]
fn addresses() {
    check(
        "lives at 02742 Matthew Spring Apt. 663 Kansas City MO 67210 with niece",
        &["02742 Matthew Spring Apt. 663", "Kansas City", "67210"],
        &["MO", "niece"],
    );
    check(
        "6878 Fowler Isle Suite 105, Milwaukee, WI 40307",
        &["6878 Fowler Isle Suite 105", "Milwaukee", "40307"],
        &["WI"],
    );
    check("PO Box 4471, Reno", &["PO Box 4471"], &[]);
    check("Received 12 units of PRBCs", &[], &["12 units"]);
    check("and previously lived in Fort Wayne.", &["Fort Wayne"], &[]);
}

#[test]
fn names() {
    check("Patient: Brian L. Morrison   DOB", &["Brian", "L.", "Morrison"], &["DOB"]);
    check("Morrison grew up here. Patient: Brian Morrison", &["Morrison grew"[..8].as_ref(), "Brian"], &[]);
    check("Dear Dr. Sick, thank you", &["Sick"], &["thank"]);
    check("alternate daughter Melinda at home", &["Melinda"], &["home"]);
    check("Patient Name - Zamora, Eloy\n", &["Zamora", "Eloy"], &[]);
    check("cc: Dr. Eloah Campos, fax", &["Eloah", "Campos"], &["fax"]);
    check("Bùi Thảo called", &["Bùi", "Thảo"], &[]);
    check("Name: KING, JEMMA\nMRN: 1226417", &["KING", "JEMMA", "1226417"], &["Name"]);
    check("Dear Major Wong, DO,\n", &["Major", "Wong"], &["Dear", "DO"]);
    check("moved here from North Dakota in 2018", &[], &["North", "Dakota", "2018"]);
    check("lactate 0.5 mmol/L. Anna was seen", &["Anna"], &["L."]);
}

#[test]
fn look_alikes_are_not_masked() {
    check(
        "Dx C50.911 (ICD-10), CPT 70450, LOINC 2345-7, NDC 0002-3227-30, order RX24540456, lot 4471A",
        &[],
        &["C50.911", "70450", "2345-7", "0002-3227-30", "RX24540456", "4471A"],
    );
    check(
        "lactate 6.4 mmol/L, glucose 238 mg/dL, HR 52, temp 103.2, copay $24,476.01",
        &[],
        &["6.4", "238", "52", "103.2", "24,476.01"],
    );
    check("with Graves' disease and Parkinson's, Bell palsy", &[], &["Graves", "Parkinson", "Bell"]);
    check("State of residence - Georgia; moved to Texas", &[], &["Georgia", "Texas"]);
}

#[test]
fn json_rows_use_column_semantics() {
    let row = r#"{"patient_name": "Matthäus R. Fechner", "age": "93", "state": "WA", "zip": "43065", "admission_ts": "2022-01-06 13:46:07", "icd10_code": "C50.911", "cpt_code": "70450", "heart_rate": "52", "note": null, "vehicle_plate": "XYZ 123"}"#;
    check(
        row,
        &["Matthäus R. Fechner", "\"93\""[1..3].as_ref(), "43065", "2022-01-06", "XYZ 123"],
        &["WA", "13:46:07", "C50.911", "70450", "52"],
    );
    check(r#"{"age": "45"}"#, &[], &["45"]);
}

#[test]
fn fhir_values_take_the_class_of_their_system() {
    let doc = r#"{"identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1", "value": "181070752"}, {"type": {"text": "MRN"}, "system": "http://hospital.example.org/mrn", "value": "X9499"}], "name": [{"family": "Bruder", "given": ["Armin"]}], "telecom": [{"system": "email", "value": "a@b.co"}], "address": [{"line": ["560 HOUSE COVE"], "city": "Seattle", "state": "WA", "postalCode": "39612"}], "contact": [{"name": {"text": "Patricia Munoz"}}], "extension": [{"url": "http://example.org/fhir/health-plan", "valueString": "187CM2136-75"}]}"#;
    check(
        doc,
        &[
            "181070752",
            "X9499",
            "Bruder",
            "Armin",
            "a@b.co",
            "560 HOUSE COVE",
            "Seattle",
            "39612",
            "Patricia Munoz",
            "187CM2136-75",
        ],
        &["WA", "hospital.example.org", "health-plan", "urn:oid"],
    );
}

#[test]
fn hl7_fields_by_position() {
    let msg = "MSH|^~\\&|ADT|GENERAL_HOSPITAL|EHR|HUB|202409231200||ADT^A04|0457470222|P|2.5\rPID|1||H619808892^^^MRN||WILSON^GARY^S||19460819|M|||00350 HAWKINS VIEW SUITE 147^^AKRON^OH^29779||+33 7 42 23 62 75|||||836843378194|796-51-7728|RN639221\rIN1|1|BCBS|||||||||||||||||||||||||||||||||||797QF2630-74\rDG1|1||R07.9^^I10";
    check(
        msg,
        &[
            "H619808892",
            "WILSON",
            "GARY",
            "19460819",
            "00350 HAWKINS VIEW SUITE 147",
            "AKRON",
            "29779",
            "836843378194",
            "796-51-7728",
            "RN639221",
            "797QF2630-74",
        ],
        &["0457470222", "BCBS", "R07.9", "GENERAL_HOSPITAL", "OH"],
    );
}

#[test]
fn column_values_are_masked_whole_when_nothing_matches() {
    let masker = Masker::safe_harbor();
    let mut counts = ClassCounts::default();
    assert_eq!(masker.mask_value(Some("patients"), "first_name", Some("text"), "Zyx", &mut counts), "[NAME]");
    assert_eq!(masker.mask_value(None, "dob", None, "1950-03-04", &mut counts), "1950");
    assert_eq!(masker.mask_value(None, "zip", None, "03601", &mut counts), "000");
    assert_eq!(masker.mask_value(None, "age", None, "94", &mut counts), "90+");
    assert_eq!(masker.mask_value(None, "age", None, "42", &mut counts), "42");
    assert_eq!(masker.mask_value(None, "seen_on", Some("date"), "2020-01-02", &mut counts), "2020");
    let clean = masker.mask_value(None, "diagnosis", None, "Essential hypertension", &mut counts);
    assert!(matches!(clean, std::borrow::Cow::Borrowed(_)));
    assert_eq!(counts.get(PhiClass::Name), 1);
    assert_eq!(counts.total(), 5);
}

#[test]
fn offsets_are_char_boundaries_and_sorted() {
    let text = "Ünïcødé Patient: Zoë Ådams 📞 +1 617 555 0123 — DOB 1/2/1990 ☃";
    let spans: Vec<Span> = Detector::new().detect(text);
    assert!(!spans.is_empty());
    for w in spans.windows(2) {
        assert!(w[0].end <= w[1].start, "{spans:?}");
    }
    for s in &spans {
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
    }
}

#[test]
fn huge_and_hostile_inputs_do_not_panic() {
    let d = Detector::new();
    let _ = d.detect(&"9".repeat(1 << 20));
    let _ = d.detect(&"{\"a\": [".repeat(10_000));
    let _ = d.detect(&"MSH|^~\\&|\rPID|".repeat(1_000));
    let _ = d.detect(&"Dr. ".repeat(10_000));
    let _ = d.detect("\"");
    let _ = d.detect("{\"k\": \"\\");
    let _ = d.detect(&"Mr. Ünï ".repeat(5_000));
}
