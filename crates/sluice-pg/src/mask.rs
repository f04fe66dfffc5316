//! Masking PostgreSQL results in flight: DataRows, COPY OUT rows, and the
//! text of notices and errors, each rewritten by the request's masker
//! before a byte reaches the client.
//!
//! Owns: what a column's type and format allow (a masked value must still
//! be a valid value of the column's type, or NULL), refusing binary columns
//! Sluice cannot read, and rebuilding messages with their lengths.
//! Does not: detect PHI or choose strategies (sluice-mask does), or track
//! which description belongs to which result (the relay does).
//!
//! Per column, by type and format:
//! - text-like types (`text`, `varchar`, `bpchar`, `name`, `json`, `jsonb`,
//!   `xml`, `unknown`), in either format, and any type in text format:
//!   the masker's rewrite, as text;
//! - `date`, `timestamp`, `timestamptz`, in either format: kept, or
//!   generalised to January 1 of the year (`timestamptz` at 12:00 UTC, so
//!   the year holds in every time zone); any other strategy gives NULL,
//!   since `[DATE]` is not a date;
//! - other built-in scalars (integers, floats, numeric, bool, uuid, inet,
//!   bytea, ...): not scanned for free text; a PHI column's value is kept
//!   or becomes NULL (binary), or, in text format, the rewrite if the type
//!   can hold it, else NULL;
//! - any other type in binary format (arrays, enums, domains, composites):
//!   refused unless the column is declared not PHI, with a message asking
//!   for text format.
//!
//! Accounting of disclosures: a plan also lists the columns classed MRN,
//! SSN or NAME, and [`ResultPlan::disclose`] hands each relayed row's clear
//! values of those columns to the request's [`Subjects`] (which keeps only
//! keyed pseudonyms). Text-like values are read as text in either format,
//! binary integers as their decimal text; other binary values, and COPY
//! rows (no column names), are not read. It runs under every profile,
//! `unmasked` included ([`ResultPlan::for_subjects`] plans only this).

use crate::codec::{self, CodecError, DataRowValues, FieldDescription};
use bytes::{BufMut, BytesMut};
use chrono::{Datelike, NaiveDate};
use sluice_mask::{ClassCounts, ColumnMap, ColumnRule, Masker, PhiClass, Strategy, Subjects, is_subject_class};
use std::borrow::Cow;
use std::collections::HashMap;

/// Why a result cannot be masked; the relay withholds it with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    #[error(
        "Sluice masks PHI in this result and cannot rewrite column \"{column}\" (type oid {type_oid}) in binary format; request text format for it"
    )]
    BinaryColumn { column: String, type_oid: u32 },
    #[error("Sluice masks PHI in this result and cannot rewrite binary COPY data; use COPY in text or CSV format")]
    BinaryCopy,
    #[error(
        "Sluice masks PHI in this result and cannot read column \"{column}\" as UTF-8; set client_encoding to UTF8"
    )]
    NotUtf8 { column: String },
    #[error("a data row has {got} values for a description of {expected} columns")]
    ColumnCount { got: u16, expected: usize },
    #[error("Sluice must know a result's columns to mask it; send Describe for the portal before Execute")]
    Undescribed,
    #[error("malformed message from the target: {0}")]
    Malformed(#[from] CodecError),
}

/// How a type's values are carried, as far as masking cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    /// UTF-8 text in both formats.
    Text,
    /// Text in text format; a version byte then text in binary.
    Jsonb,
    Date,
    Timestamp,
    TimestampTz,
    /// Integers: a generalised ZIP or age still fits in text format.
    Integer,
    /// Other built-in scalars: no free text inside.
    Scalar,
    /// Arrays, enums, domains, composites, extension types.
    Other,
}

fn value_type(oid: u32) -> ValueType {
    match oid {
        25 | 1043 | 1042 | 19 | 114 | 142 | 705 | 18 => ValueType::Text,
        3802 => ValueType::Jsonb,
        1082 => ValueType::Date,
        1114 => ValueType::Timestamp,
        1184 => ValueType::TimestampTz,
        20 | 21 | 23 | 26 => ValueType::Integer,
        16 | 17 | 700 | 701 | 1700 | 790 | 2950 | 869 | 650 | 829 | 774 | 1083 | 1266 | 1186 | 1560 | 1562 => {
            ValueType::Scalar
        }
        _ => ValueType::Other,
    }
}

/// The type name column rules read (a date-typed column is a date).
fn type_name(ty: ValueType) -> Option<&'static str> {
    match ty {
        ValueType::Date => Some("date"),
        ValueType::Timestamp | ValueType::TimestampTz => Some("timestamp"),
        _ => None,
    }
}

/// One column of a result, resolved once per result.
#[derive(Debug, Clone)]
struct ColumnPlan {
    name: String,
    rule: ColumnRule,
    ty: ValueType,
    binary: bool,
}

/// How every column of one result is masked.
#[derive(Debug, Clone)]
pub(crate) struct ResultPlan {
    columns: Vec<ColumnPlan>,
    /// Some column may be rewritten; otherwise rows pass untouched.
    active: bool,
    /// The columns whose values identify a patient (MRN, SSN, NAME), by
    /// index, for the accounting of disclosures.
    subjects: Vec<(usize, PhiClass)>,
}

impl ResultPlan {
    /// The plan for a result described by `fields`, whose formats are
    /// `formats` (Bind's result format codes) when the description came
    /// from Describe of a statement, or the fields' own otherwise.
    /// `tables` names the tables whose OIDs Sluice looked up, for
    /// `table.column` overrides.
    pub(crate) fn new(
        fields: &[FieldDescription],
        formats: Option<&[i16]>,
        masker: &Masker,
        tables: &HashMap<u32, String>,
    ) -> Result<ResultPlan, MaskError> {
        ResultPlan::build(fields, formats, masker.detector().columns(), true, tables)
    }

    /// The plan for an exchange's result: under its masker, else (a profile
    /// that keeps everything) only for the accounting of disclosures.
    pub(crate) fn for_exchange(
        fields: &[FieldDescription],
        formats: Option<&[i16]>,
        exchange: &sluice_pipeline::Exchange,
        tables: &HashMap<u32, String>,
    ) -> Result<ResultPlan, MaskError> {
        match (exchange.masker(), exchange.subject_columns()) {
            (Some(masker), _) => ResultPlan::new(fields, formats, masker, tables),
            (None, rules) => ResultPlan::for_subjects(fields, formats, rules.unwrap_or(&ColumnMap::new()), tables),
        }
    }

    /// The plan of a result no profile rewrites (`unmasked`): nothing is
    /// refused or masked, only the subject columns are found, for
    /// [`ResultPlan::disclose`].
    pub(crate) fn for_subjects(
        fields: &[FieldDescription],
        formats: Option<&[i16]>,
        rules: &ColumnMap,
        tables: &HashMap<u32, String>,
    ) -> Result<ResultPlan, MaskError> {
        ResultPlan::build(fields, formats, rules, false, tables)
    }

    fn build(
        fields: &[FieldDescription],
        formats: Option<&[i16]>,
        rules: &ColumnMap,
        masks: bool,
        tables: &HashMap<u32, String>,
    ) -> Result<ResultPlan, MaskError> {
        let columns = fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let format = match formats {
                    None => field.format,
                    Some([]) => 0,
                    Some([one]) => *one,
                    Some(many) => many.get(i).copied().unwrap_or(0),
                };
                let ty = value_type(field.type_oid);
                let table = tables.get(&field.table_oid).map(String::as_str);
                let rule = rules.classify(table, &field.name, type_name(ty));
                let binary = format == 1;
                if masks && binary && ty == ValueType::Other && rule != ColumnRule::NotPhi {
                    return Err(MaskError::BinaryColumn { column: field.name.clone(), type_oid: field.type_oid });
                }
                Ok(ColumnPlan { name: field.name.clone(), rule, ty, binary })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let active = masks
            && columns.iter().any(|c| {
                c.rule != ColumnRule::NotPhi
                    && (c.rule != ColumnRule::FreeText || !matches!(c.ty, ValueType::Scalar | ValueType::Integer))
            });
        let subjects = columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c.rule {
                ColumnRule::Phi(class) if is_subject_class(class) => Some((i, class)),
                _ => None,
            })
            .collect();
        Ok(ResultPlan { columns, active, subjects })
    }

    /// Whether some column holds a patient identifier: only then is
    /// [`ResultPlan::disclose`] worth calling.
    pub(crate) fn discloses(&self) -> bool {
        !self.subjects.is_empty()
    }

    /// Adds the clear values of the subject columns of one relayed DataRow
    /// (`body`, as the target sent it) to `subjects`. A row it cannot read
    /// adds nothing (the masked path has already refused malformed rows).
    pub(crate) fn disclose(&self, body: &[u8], subjects: &mut Subjects) {
        let Some(&(last, _)) = self.subjects.last() else { return };
        let Ok((_, values)) = DataRowValues::new(body) else { return };
        let mut wanted = self.subjects.iter().peekable();
        for (i, value) in values.enumerate().take(last + 1) {
            let Some(&&(index, class)) = wanted.peek() else { break };
            if i != index {
                continue;
            }
            wanted.next();
            let Ok(Some(bytes)) = value else { continue };
            let column = &self.columns[i];
            match (column.ty, column.binary) {
                (ValueType::Integer, true) => {
                    let number = match bytes.len() {
                        2 => i64::from(i16::from_be_bytes([bytes[0], bytes[1]])),
                        4 => i64::from(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
                        8 => i64::from_be_bytes(bytes.try_into().unwrap_or_default()),
                        _ => continue,
                    };
                    subjects.add(class, &number.to_string());
                }
                (ValueType::Jsonb, true) => {
                    if let Some((&1, text)) = bytes.split_first()
                        && let Ok(text) = std::str::from_utf8(text)
                    {
                        subjects.add(class, text);
                    }
                }
                (ValueType::Text, _) | (_, false) => {
                    if let Ok(text) = std::str::from_utf8(bytes) {
                        subjects.add(class, text);
                    }
                }
                _ => {}
            }
        }
        subjects.end_row();
    }

    /// Rewrites one DataRow (`body` without tag and length) into `out`:
    /// untouched when no value changes (no allocation), otherwise rebuilt
    /// with new lengths. On error nothing is written.
    pub(crate) fn rewrite_row(
        &self,
        frame: &[u8],
        body: &[u8],
        masker: &Masker,
        counts: &mut ClassCounts,
        out: &mut BytesMut,
    ) -> Result<(), MaskError> {
        let (count, values) = DataRowValues::new(body)?;
        if count as usize != self.columns.len() {
            return Err(MaskError::ColumnCount { got: count, expected: self.columns.len() });
        }
        if !self.active {
            // Still check the row is well formed: nothing malformed is relayed.
            let mut values = values;
            for value in values.by_ref() {
                value?;
            }
            if !values.is_exhausted() {
                return Err(CodecError::Malformed { what: "DataRow", why: "bytes after the last value" }.into());
            }
            out.extend_from_slice(frame);
            return Ok(());
        }
        let start = out.len();
        let mut values = values;
        let mut changed = false;
        codec::begin_data_row(out, count);
        let result = (|| {
            for (column, value) in self.columns.iter().zip(values.by_ref()) {
                match value? {
                    None => codec::put_value(out, None),
                    Some(bytes) => match mask_value(column, bytes, masker, counts)? {
                        Rewritten::Keep => codec::put_value(out, Some(bytes)),
                        Rewritten::Null => {
                            changed = true;
                            codec::put_value(out, None)
                        }
                        Rewritten::Value(new) => {
                            changed = true;
                            codec::put_value(out, Some(&new))
                        }
                    },
                }
            }
            if !values.is_exhausted() {
                return Err(CodecError::Malformed { what: "DataRow", why: "bytes after the last value" }.into());
            }
            Ok(())
        })();
        match result {
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
            Ok(()) if !changed => {
                out.truncate(start);
                out.extend_from_slice(frame);
                Ok(())
            }
            Ok(()) => {
                codec::finish_message(out, start);
                Ok(())
            }
        }
    }
}

/// What becomes of one value.
enum Rewritten {
    Keep,
    Null,
    Value(Vec<u8>),
}

fn mask_value(
    column: &ColumnPlan,
    bytes: &[u8],
    masker: &Masker,
    counts: &mut ClassCounts,
) -> Result<Rewritten, MaskError> {
    let as_text = |bytes| std::str::from_utf8(bytes).map_err(|_| MaskError::NotUtf8 { column: column.name.clone() });
    match (column.ty, column.binary) {
        (ValueType::Date | ValueType::Timestamp | ValueType::TimestampTz, binary) => {
            Ok(mask_date(column, bytes, binary, masker, counts))
        }
        (ValueType::Jsonb, true) => {
            let (version, text) = bytes.split_first().ok_or(MaskError::NotUtf8 { column: column.name.clone() })?;
            if *version != 1 {
                return Err(MaskError::BinaryColumn { column: column.name.clone(), type_oid: 3802 });
            }
            Ok(match masker.mask_column(column.rule, as_text(text)?, counts) {
                Cow::Borrowed(_) => Rewritten::Keep,
                Cow::Owned(masked) => Rewritten::Value([&[1u8][..], masked.as_bytes()].concat()),
            })
        }
        (ValueType::Text | ValueType::Jsonb, _) | (ValueType::Other, false) => {
            Ok(match masker.mask_column(column.rule, as_text(bytes)?, counts) {
                Cow::Borrowed(_) => Rewritten::Keep,
                Cow::Owned(masked) => Rewritten::Value(masked.into_bytes()),
            })
        }
        (ValueType::Integer | ValueType::Scalar | ValueType::Other, binary) => {
            let ColumnRule::Phi(class) = column.rule else { return Ok(Rewritten::Keep) };
            if binary {
                return Ok(if masker.profile().strategy(class) == Strategy::Keep {
                    Rewritten::Keep
                } else {
                    counts.add(class);
                    Rewritten::Null
                });
            }
            Ok(match masker.mask_column(column.rule, as_text(bytes)?, counts) {
                Cow::Borrowed(_) => Rewritten::Keep,
                Cow::Owned(masked) => {
                    let number = masked.trim_end_matches('+');
                    let fits = column.ty == ValueType::Integer && number.parse::<i64>().is_ok();
                    if fits { Rewritten::Value(number.as_bytes().to_vec()) } else { Rewritten::Null }
                }
            })
        }
    }
}

/// Days from 0001-01-01 (chrono's day count) to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i32 = 730_120;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A date or timestamp column: kept, generalised to January 1 of its
/// year, or NULL.
fn mask_date(column: &ColumnPlan, bytes: &[u8], binary: bool, masker: &Masker, counts: &mut ClassCounts) -> Rewritten {
    let class = match column.rule {
        ColumnRule::Phi(class) => class,
        ColumnRule::FreeText => PhiClass::Date,
        ColumnRule::NotPhi => return Rewritten::Keep,
    };
    let strategy = masker.profile().strategy(class);
    if strategy == Strategy::Keep {
        return Rewritten::Keep;
    }
    if class != PhiClass::Date || strategy != Strategy::Generalize {
        counts.add(class);
        return Rewritten::Null;
    }
    let year = if binary { binary_year(column.ty, bytes) } else { text_year(bytes) };
    let Some(year) = year else {
        // infinity, -infinity: not an element of anyone's date.
        return Rewritten::Keep;
    };
    counts.add(PhiClass::Date);
    let Some(new_year) = NaiveDate::from_ymd_opt(year, 1, 1) else { return Rewritten::Null };
    if binary {
        let days = new_year.num_days_from_ce() - PG_EPOCH_DAYS;
        let bytes = match column.ty {
            ValueType::Date => days.to_be_bytes().to_vec(),
            ValueType::TimestampTz => (days as i64 * MICROS_PER_DAY + MICROS_PER_DAY / 2).to_be_bytes().to_vec(),
            _ => (days as i64 * MICROS_PER_DAY).to_be_bytes().to_vec(),
        };
        return Rewritten::Value(bytes);
    }
    let text = match column.ty {
        ValueType::Date => format!("{year:04}-01-01"),
        ValueType::TimestampTz => format!("{year:04}-01-01 12:00:00+00"),
        _ => format!("{year:04}-01-01 00:00:00"),
    };
    Rewritten::Value(text.into_bytes())
}

/// The year of a binary date (days since 2000-01-01) or timestamp
/// (microseconds since 2000-01-01); `None` for infinity or garbage.
fn binary_year(ty: ValueType, bytes: &[u8]) -> Option<i32> {
    let days = match ty {
        ValueType::Date => {
            let days = i32::from_be_bytes(bytes.try_into().ok()?);
            (days != i32::MAX && days != i32::MIN).then_some(days)?
        }
        _ => {
            let micros = i64::from_be_bytes(bytes.try_into().ok()?);
            (micros != i64::MAX && micros != i64::MIN).then_some(())?;
            i32::try_from(micros.div_euclid(MICROS_PER_DAY)).ok()?
        }
    };
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(PG_EPOCH_DAYS)?).map(|d| d.year())
}

/// The year in a date or timestamp's text: the first run of four digits
/// (ISO `1988-04-26`, or `04/26/1988` under another DateStyle).
fn text_year(bytes: &[u8]) -> Option<i32> {
    let mut run = 0;
    for (i, b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            run += 1;
            continue;
        }
        if run == 4 {
            return std::str::from_utf8(&bytes[i - 4..i]).ok()?.parse().ok();
        }
        run = 0;
    }
    (run == 4).then(|| std::str::from_utf8(&bytes[bytes.len() - 4..]).ok()?.parse().ok())?
}

/// Masks one COPY OUT row (a CopyData body) in text or CSV format: each
/// field between delimiters (tab, comma, `|`, `;`) is read as free text, so
/// a replacement never moves a delimiter. Column names are not on the wire
/// for COPY, so only the content recognisers apply here.
pub(crate) fn rewrite_copy_row(
    frame: &[u8],
    body: &[u8],
    masker: &Masker,
    counts: &mut ClassCounts,
    out: &mut BytesMut,
) -> Result<(), MaskError> {
    let text = std::str::from_utf8(body).map_err(|_| MaskError::NotUtf8 { column: "COPY data".into() })?;
    let mut rebuilt: Option<String> = None;
    let mut copied = 0;
    for piece in text.split_inclusive(['\t', ',', '|', ';']) {
        let field = piece.trim_end_matches(['\t', ',', '|', ';']);
        if let Cow::Owned(masked) = masker.mask_column(ColumnRule::FreeText, field, counts) {
            let buf = rebuilt.get_or_insert_with(|| String::with_capacity(text.len() + 16));
            let start = field.as_ptr() as usize - text.as_ptr() as usize;
            buf.push_str(&text[copied..start]);
            buf.push_str(&masked);
            copied = start + field.len();
        }
    }
    match rebuilt {
        None => out.extend_from_slice(frame),
        Some(mut buf) => {
            buf.push_str(&text[copied..]);
            out.put_u8(b'd');
            out.put_i32(buf.len() as i32 + 4);
            out.put_slice(buf.as_bytes());
        }
    }
    Ok(())
}

/// Masks the text fields of an ErrorResponse or NoticeResponse (message,
/// detail, hint, context, internal query): upstream errors echo values,
/// as in `Key (ssn)=(123-45-6789) already exists`. A key detail is read
/// with column semantics. Codes, severities and positions pass.
pub(crate) fn rewrite_notice(
    frame: &[u8],
    tag: u8,
    body: &[u8],
    masker: &Masker,
    counts: &mut ClassCounts,
    out: &mut BytesMut,
) {
    let mut fields: Vec<(u8, Cow<'_, str>)> = Vec::new();
    let mut changed = false;
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let Some(end) = tail.iter().position(|b| *b == 0) else { break };
        let text = String::from_utf8_lossy(&tail[..end]);
        rest = &tail[end + 1..];
        let masked = match kind {
            b'M' | b'D' | b'H' | b'W' | b'q' => mask_message_text(&text, masker, counts),
            _ => None,
        };
        changed |= masked.is_some();
        fields.push((kind, masked.map_or(text, Cow::Owned)));
    }
    if !changed {
        out.extend_from_slice(frame);
        return;
    }
    let start = out.len();
    out.put_u8(tag);
    out.put_i32(0);
    for (kind, text) in &fields {
        out.put_u8(*kind);
        // A NUL cannot be part of a field; the lossy decode never yields one.
        out.put_slice(text.as_bytes());
        out.put_u8(0);
    }
    out.put_u8(0);
    codec::finish_message(out, start);
}

/// One message field with its PHI masked, or `None` when it is clean.
fn mask_message_text(text: &str, masker: &Masker, counts: &mut ClassCounts) -> Option<String> {
    let keyed = mask_key_detail(text, masker, counts);
    match masker.mask(keyed.as_deref().unwrap_or(text), counts) {
        Cow::Owned(masked) => Some(masked),
        Cow::Borrowed(_) => keyed,
    }
}

/// `Key (col, ...)=(value, ...) ...`: the values of a key whose columns
/// are PHI by name are masked whole (one column: by its class; several: the
/// whole list, as the first PHI column's class).
fn mask_key_detail(text: &str, masker: &Masker, counts: &mut ClassCounts) -> Option<String> {
    let rest = text.strip_prefix("Key (")?;
    let (columns, rest) = rest.split_once(")=(")?;
    let values_end = rest.rfind(')')?;
    let values = &rest[..values_end];
    let rules = masker.detector().columns();
    let class = columns.split(',').find_map(|c| match rules.classify(None, c.trim(), None) {
        ColumnRule::Phi(class) => Some(class),
        _ => None,
    })?;
    if masker.profile().strategy(class) == Strategy::Keep {
        return None;
    }
    let masked = masker.mask_column(ColumnRule::Phi(class), values, counts);
    Some(format!("Key ({columns})=({masked}){}", &rest[values_end + 1..]))
}

#[cfg(test)]
mod tests;
