//! Tests of in-flight masking: each type and format, notices, COPY rows,
//! and random input into the DataRow rewriter.

use super::*;
use crate::codec::{Frame, split_frame};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sluice_mask::{ColumnMap, Detector, Profile};

const TEXT: u32 = 25;
const INT8: u32 = 20;
const DATE: u32 = 1082;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
const JSONB: u32 = 3802;
const TEXT_ARRAY: u32 = 1009;

fn field(name: &str, type_oid: u32, format: i16) -> FieldDescription {
    FieldDescription { name: name.into(), table_oid: 0, type_oid, format }
}

fn row(values: &[Option<&[u8]>]) -> Frame {
    let mut out = BytesMut::new();
    let start = codec::begin_data_row(&mut out, values.len() as u16);
    for value in values {
        codec::put_value(&mut out, *value);
    }
    codec::finish_message(&mut out, start);
    split_frame(&mut out, 1 << 20).unwrap().unwrap()
}

/// The values of a rewritten DataRow; panics if it is malformed.
fn values_of(out: &mut BytesMut) -> Vec<Option<Vec<u8>>> {
    let frame = split_frame(out, 1 << 20).unwrap().expect("a whole message");
    assert_eq!(frame.tag, b'D');
    assert!(out.is_empty(), "exactly one message");
    let (_, mut values) = DataRowValues::new(frame.body()).unwrap();
    let read = values.by_ref().map(|v| v.unwrap().map(<[u8]>::to_vec)).collect();
    assert!(values.is_exhausted());
    read
}

fn rewrite(
    fields: &[FieldDescription],
    masker: &Masker,
    values: &[Option<&[u8]>],
) -> (Vec<Option<Vec<u8>>>, ClassCounts) {
    let plan = ResultPlan::new(fields, None, masker, &HashMap::new()).unwrap();
    let frame = row(values);
    let mut counts = ClassCounts::default();
    let mut out = BytesMut::new();
    plan.rewrite_row(&frame.bytes, frame.body(), masker, &mut counts, &mut out).unwrap();
    (values_of(&mut out), counts)
}

fn text(value: &Option<Vec<u8>>) -> &str {
    std::str::from_utf8(value.as_deref().expect("not NULL")).unwrap()
}

#[test]
fn text_columns_are_masked_by_name_and_content() {
    let masker = Masker::safe_harbor();
    let fields = [field("id", INT8, 0), field("first_name", TEXT, 0), field("ssn", TEXT, 0), field("note", TEXT, 0)];
    let (values, counts) = rewrite(
        &fields,
        &masker,
        &[Some(b"7"), Some(b"Zyxq"), Some(b"123-45-6789"), Some(b"call 617-555-0101 tomorrow")],
    );
    assert_eq!(text(&values[0]), "7");
    assert_eq!(text(&values[1]), "[NAME]", "a name column is masked whole, in no dictionary or not");
    assert_eq!(text(&values[2]), "[SSN]");
    assert_eq!(text(&values[3]), "call [PHONE] tomorrow");
    assert_eq!((counts.get(PhiClass::Name), counts.get(PhiClass::Ssn), counts.get(PhiClass::Phone)), (1, 1, 1));
}

#[test]
fn a_clean_row_is_relayed_byte_for_byte() {
    let masker = Masker::safe_harbor();
    let fields = [field("id", INT8, 0), field("status", TEXT, 0), field("note", TEXT, 1)];
    let plan = ResultPlan::new(&fields, None, &masker, &HashMap::new()).unwrap();
    let frame = row(&[Some(b"1"), None, Some(b"stable, no complaints")]);
    let mut out = BytesMut::new();
    let mut counts = ClassCounts::default();
    plan.rewrite_row(&frame.bytes, frame.body(), &masker, &mut counts, &mut out).unwrap();
    assert_eq!(&out[..], &frame.bytes[..]);
    assert_eq!(counts.total(), 0);
}

#[test]
fn dates_keep_their_year_and_stay_valid_in_both_formats() {
    let masker = Masker::safe_harbor();
    let fields = [
        field("dob", DATE, 0),
        field("admitted_at", TIMESTAMP, 0),
        field("seen_at", TIMESTAMPTZ, 0),
        field("dob", DATE, 1),
        field("admitted_at", TIMESTAMP, 1),
        field("seen_at", TIMESTAMPTZ, 1),
    ];
    // 1988-04-26 is 4268 days before 2000-01-01.
    let days = (-4268i32).to_be_bytes();
    let micros = (-4268i64 * MICROS_PER_DAY + 3_600_000_000).to_be_bytes();
    let (values, counts) = rewrite(
        &fields,
        &masker,
        &[
            Some(b"1988-04-26"),
            Some(b"1988-04-26 01:00:00"),
            Some(b"1988-04-26 01:00:00+00"),
            Some(&days),
            Some(&micros),
            Some(&micros),
        ],
    );
    assert_eq!(text(&values[0]), "1988-01-01");
    assert_eq!(text(&values[1]), "1988-01-01 00:00:00");
    assert_eq!(text(&values[2]), "1988-01-01 12:00:00+00");
    // 1988-01-01 is 12 years (three of them leap) before 2000-01-01.
    let jan1: i32 = -(12 * 365 + 3);
    assert_eq!(values[3].as_deref(), Some(&jan1.to_be_bytes()[..]));
    assert_eq!(values[4].as_deref(), Some(&(jan1 as i64 * MICROS_PER_DAY).to_be_bytes()[..]));
    assert_eq!(values[5].as_deref(), Some(&(jan1 as i64 * MICROS_PER_DAY + MICROS_PER_DAY / 2).to_be_bytes()[..]));
    assert_eq!(counts.get(PhiClass::Date), 6);
}

#[test]
fn infinite_dates_pass_and_redacted_dates_become_null() {
    let redacting =
        Masker::new(Detector::new(), Profile::safe_harbor().with_strategy(PhiClass::Date, Strategy::Redact).unwrap());
    let fields = [field("dob", DATE, 1), field("dob", DATE, 0)];
    let (values, _) = rewrite(&fields, &redacting, &[Some(&1000i32.to_be_bytes()), Some(b"2001-01-02")]);
    assert_eq!(values, [None, None], "[DATE] is not a date: NULL");
    let (values, _) = rewrite(&fields, &Masker::safe_harbor(), &[Some(&i32::MAX.to_be_bytes()), Some(b"infinity")]);
    assert_eq!(values[0].as_deref(), Some(&i32::MAX.to_be_bytes()[..]));
    assert_eq!(text(&values[1]), "infinity");
}

#[test]
fn typed_phi_columns_stay_valid_for_their_type() {
    let masker = Masker::safe_harbor();
    let fields = [field("ssn", INT8, 0), field("zip", INT8, 0), field("ssn", INT8, 1), field("doc", JSONB, 1)];
    let json = [&[1u8][..], br#"{"email": "a.b@example.org", "status": "ok"}"#].concat();
    let (values, _) = rewrite(&fields, &masker, &[Some(b"123456789"), Some(b"90210"), Some(&[0; 8]), Some(&json)]);
    assert_eq!(values[0], None, "[SSN] is not an integer");
    assert_eq!(text(&values[1]), "902", "a ZIP3 is still an integer");
    assert_eq!(values[2], None);
    let doc = values[3].as_deref().unwrap();
    assert_eq!(doc[0], 1, "jsonb keeps its version byte");
    let doc: serde_json::Value = serde_json::from_slice(&doc[1..]).expect("still JSON");
    assert_eq!(doc["email"], "[EMAIL]");
    assert_eq!(doc["status"], "ok");
}

#[test]
fn binary_columns_of_unknown_types_are_refused_unless_declared_clean() {
    let masker = Masker::safe_harbor();
    let err = ResultPlan::new(&[field("aliases", TEXT_ARRAY, 1)], None, &masker, &HashMap::new()).unwrap_err();
    assert!(err.to_string().contains("request text format"), "{err}");
    let declared = Masker::new(
        Detector::with_columns(ColumnMap::new().with_override("*.aliases", ColumnRule::NotPhi)),
        Profile::safe_harbor(),
    );
    assert!(ResultPlan::new(&[field("aliases", TEXT_ARRAY, 1)], None, &declared, &HashMap::new()).is_ok());
    // In text format the same column is masked as text.
    let (values, _) = rewrite(&[field("aliases", TEXT_ARRAY, 0)], &masker, &[Some(br#"{"Dr. Zyxq Smith"}"#)]);
    assert!(!text(&values[0]).contains("Smith"), "{:?}", text(&values[0]));
}

#[test]
fn bind_formats_apply_to_a_statement_description() {
    let masker = Masker::safe_harbor();
    let fields = [field("dob", DATE, 0), field("aliases", TEXT_ARRAY, 0)];
    assert!(ResultPlan::new(&fields, Some(&[1]), &masker, &HashMap::new()).is_err(), "one code applies to all");
    assert!(ResultPlan::new(&fields, Some(&[1, 0]), &masker, &HashMap::new()).is_ok());
    assert!(ResultPlan::new(&fields, Some(&[]), &masker, &HashMap::new()).is_ok(), "no codes: all text");
}

#[test]
fn table_overrides_use_the_looked_up_table_names() {
    let masker = Masker::new(
        Detector::with_columns(ColumnMap::new().with_override("visits.code", ColumnRule::Phi(PhiClass::OtherId))),
        Profile::safe_harbor(),
    );
    let tables = HashMap::from([(42, "visits".to_string())]);
    let mut visits = field("code", TEXT, 0);
    visits.table_oid = 42;
    let plan = ResultPlan::new(&[visits, field("code", TEXT, 0)], None, &masker, &tables).unwrap();
    let frame = row(&[Some(b"A7"), Some(b"A7")]);
    let mut out = BytesMut::new();
    plan.rewrite_row(&frame.bytes, frame.body(), &masker, &mut ClassCounts::default(), &mut out).unwrap();
    let values = values_of(&mut out);
    assert_eq!((text(&values[0]), text(&values[1])), ("[OTHER_ID]", "A7"));
}

#[test]
fn unique_violation_details_are_masked() {
    let masker = Masker::safe_harbor();
    let mut frame = BytesMut::new();
    frame.put_u8(b'E');
    frame.put_i32(0);
    for (kind, value) in [
        (b'S', "ERROR"),
        (b'C', "23505"),
        (b'M', "duplicate key value violates unique constraint \"patients_mrn_key\""),
        (b'D', "Key (mrn)=(MRN-0042137) already exists."),
    ] {
        frame.put_u8(kind);
        frame.put_slice(value.as_bytes());
        frame.put_u8(0);
    }
    frame.put_u8(0);
    codec::finish_message(&mut frame, 0);
    let frame = split_frame(&mut frame, 1 << 20).unwrap().unwrap();
    let mut out = BytesMut::new();
    let mut counts = ClassCounts::default();
    rewrite_notice(&frame.bytes, b'E', frame.body(), &masker, &mut counts, &mut out);
    let masked = split_frame(&mut out, 1 << 20).unwrap().unwrap();
    let body = String::from_utf8_lossy(masked.body()).into_owned();
    assert!(body.contains("Key (mrn)=([MRN]) already exists."), "{body:?}");
    assert!(body.contains("23505") && body.contains("patients_mrn_key"), "{body:?}");
    assert_eq!(counts.get(PhiClass::Mrn), 1);
}

#[test]
fn copy_rows_are_masked_field_by_field() {
    let masker = Masker::safe_harbor();
    let body = b"7\tcall 617-555-0101\ta.b@example.org,x\n";
    let mut frame = BytesMut::new();
    frame.put_u8(b'd');
    frame.put_i32(body.len() as i32 + 4);
    frame.put_slice(body);
    let frame = split_frame(&mut frame, 1 << 20).unwrap().unwrap();
    let mut out = BytesMut::new();
    rewrite_copy_row(&frame.bytes, frame.body(), &masker, &mut ClassCounts::default(), &mut out).unwrap();
    let masked = split_frame(&mut out, 1 << 20).unwrap().unwrap();
    assert_eq!(masked.body(), b"7\tcall [PHONE]\t[EMAIL],x\n");
}

/// Random bytes, and random corruptions of real rows, into the rewriter:
/// it never panics, and whatever it writes is one well-formed DataRow with
/// the described number of values.
#[test]
fn random_input_never_panics_or_yields_a_malformed_row() {
    let masker = Masker::safe_harbor();
    let types = [TEXT, INT8, DATE, TIMESTAMP, TIMESTAMPTZ, JSONB, 16, 17, 2950];
    let names = ["id", "first_name", "ssn", "dob", "note", "zip", "email", "payload"];
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let columns = rng.random_range(0..6);
        let fields: Vec<_> = (0..columns)
            .map(|_| {
                let name = names[rng.random_range(0..names.len())];
                field(name, types[rng.random_range(0..types.len())], rng.random_range(0..2))
            })
            .collect();
        let Ok(plan) = ResultPlan::new(&fields, None, &masker, &HashMap::new()) else { continue };
        let body: Vec<u8> = if rng.random_bool(0.5) {
            (0..rng.random_range(0..64)).map(|_| rng.random()).collect()
        } else {
            let values: Vec<Vec<u8>> = (0..columns)
                .map(|_| {
                    let pool: &[&[u8]] =
                        &[b"123-45-6789", b"Jane Doe", b"1988-04-26", b"\x01{\"a\":1}", b"\xff\xfe", b""];
                    pool[rng.random_range(0..pool.len())].to_vec()
                })
                .collect();
            let frame = row(&values.iter().map(|v| Some(&v[..])).collect::<Vec<_>>());
            let mut body = frame.body().to_vec();
            for _ in 0..rng.random_range(0..3) {
                if !body.is_empty() {
                    let i = rng.random_range(0..body.len());
                    body[i] = rng.random();
                }
            }
            body
        };
        let mut frame_bytes = BytesMut::new();
        frame_bytes.put_u8(b'D');
        frame_bytes.put_i32(body.len() as i32 + 4);
        frame_bytes.put_slice(&body);
        let mut out = BytesMut::new();
        match plan.rewrite_row(&frame_bytes, &body, &masker, &mut ClassCounts::default(), &mut out) {
            Ok(()) => {
                accepted += 1;
                assert_eq!(values_of(&mut out).len(), columns);
            }
            Err(_) => assert!(out.is_empty(), "nothing is written for a refused row"),
        }
    }
    assert!(accepted > 1000, "the generator reaches the rewriting paths ({accepted})");
}

/// The accounting pseudonyms a plan collects from `rows`.
fn disclosed(plan: &ResultPlan, rows: &[Vec<Option<&[u8]>>]) -> std::collections::BTreeMap<String, Vec<String>> {
    let key = std::sync::Arc::new(sluice_mask::DisclosureKey::new(b"0123456789abcdef0123456789abcdef"));
    let mut subjects = Subjects::new(key);
    for values in rows {
        let frame = row(values);
        plan.disclose(frame.body(), &mut subjects);
    }
    subjects.by_class()
}

#[test]
fn subject_columns_give_one_pseudonym_in_text_and_binary_and_any_spelling() {
    let masker = Masker::safe_harbor();
    let fields =
        |format| [field("mrn", TEXT, format), field("diagnosis", TEXT, format), field("patient_name", TEXT, format)];
    let text_plan = ResultPlan::new(&fields(0), None, &masker, &HashMap::new()).unwrap();
    let binary_plan = ResultPlan::new(&fields(1), None, &masker, &HashMap::new()).unwrap();
    let unmasked_plan =
        ResultPlan::for_subjects(&fields(0), None, masker.detector().columns(), &HashMap::new()).unwrap();
    assert!(text_plan.discloses() && unmasked_plan.discloses());
    let a: Vec<Option<&[u8]>> = vec![Some(b"MRN0100001"), Some(b"asthma"), Some(b"Ava Okafor")];
    let a_again: Vec<Option<&[u8]>> = vec![Some(b" mrn0100001 "), Some(b"migraine"), Some(b"OKAFOR,  ava")];
    let want = disclosed(&text_plan, std::slice::from_ref(&a));
    assert_eq!(want.keys().collect::<Vec<_>>(), ["MRN", "NAME"]);
    assert_eq!(disclosed(&binary_plan, std::slice::from_ref(&a)), want);
    assert_eq!(disclosed(&unmasked_plan, std::slice::from_ref(&a_again)), want);
    assert_eq!(disclosed(&text_plan, &[a.clone(), a_again.clone()]), want, "deduplicated");
    let none: Vec<Option<&[u8]>> = vec![None, Some(b"asthma"), None];
    assert!(disclosed(&text_plan, &[none]).is_empty());

    // A binary integer MRN meets its text form.
    let ints = |format| [field("mrn", INT8, format)];
    let int_text = ResultPlan::new(&ints(0), None, &masker, &HashMap::new()).unwrap();
    let int_binary = ResultPlan::for_subjects(&ints(1), None, masker.detector().columns(), &HashMap::new()).unwrap();
    let binary = 100001i64.to_be_bytes();
    assert_eq!(disclosed(&int_binary, &[vec![Some(&binary[..])]]), disclosed(&int_text, &[vec![Some(b"100001")]]));

    // A result with no identifier column discloses nothing, and a plan
    // for an unmasked profile refuses nothing.
    let plain =
        ResultPlan::for_subjects(&[field("diagnosis", TEXT, 0)], None, &ColumnMap::new(), &HashMap::new()).unwrap();
    assert!(!plain.discloses());
    assert!(
        ResultPlan::for_subjects(&[field("aliases", TEXT_ARRAY, 1)], None, &ColumnMap::new(), &HashMap::new()).is_ok()
    );
}
