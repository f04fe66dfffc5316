//! Result rows on the wire: RowDescription fields, DataRow values, and
//! writing a DataRow back.
//!
//! Owns: the byte layout of the two messages a masked result is rebuilt
//! from. Does not: decide what to rewrite (the `mask` module does).

use super::{CodecError, malformed, take_cstr, take_i32, take_u16};
use bytes::{BufMut, BytesMut};

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    pub name: String,
    /// The table the column comes from (0 for an expression).
    pub table_oid: u32,
    pub type_oid: u32,
    /// 0 text, 1 binary. A statement's description (Describe 'S') says 0
    /// for every column: the formats are chosen later, by Bind.
    pub format: i16,
}

/// The columns of a RowDescription body.
pub fn decode_row_description(mut body: &[u8]) -> Result<Vec<FieldDescription>, CodecError> {
    let count = take_u16(&mut body).ok_or(malformed("RowDescription", "truncated"))?;
    let mut fields = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let name = take_cstr(&mut body).ok_or(malformed("RowDescription", "bad column name"))?.to_string();
        let table_oid = take_i32(&mut body).ok_or(malformed("RowDescription", "truncated"))? as u32;
        let _column = take_u16(&mut body).ok_or(malformed("RowDescription", "truncated"))?;
        let type_oid = take_i32(&mut body).ok_or(malformed("RowDescription", "truncated"))? as u32;
        let _type_len = take_u16(&mut body).ok_or(malformed("RowDescription", "truncated"))?;
        let _type_modifier = take_i32(&mut body).ok_or(malformed("RowDescription", "truncated"))?;
        let format = take_u16(&mut body).ok_or(malformed("RowDescription", "truncated"))? as i16;
        fields.push(FieldDescription { name, table_oid, type_oid, format });
    }
    Ok(fields)
}

/// The values of a DataRow body, in column order; `None` is SQL NULL.
/// Yields an error (and then nothing) when the body is malformed.
#[derive(Debug)]
pub struct DataRowValues<'a> {
    rest: &'a [u8],
    remaining: u16,
}

impl<'a> DataRowValues<'a> {
    /// The column count and the values of a DataRow body.
    pub fn new(mut body: &'a [u8]) -> Result<(u16, DataRowValues<'a>), CodecError> {
        let count = take_u16(&mut body).ok_or(malformed("DataRow", "truncated"))?;
        Ok((count, DataRowValues { rest: body, remaining: count }))
    }

    /// Whether every value was read and nothing follows the last one.
    pub fn is_exhausted(&self) -> bool {
        self.remaining == 0 && self.rest.is_empty()
    }
}

impl<'a> Iterator for DataRowValues<'a> {
    type Item = Result<Option<&'a [u8]>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let value = match take_i32(&mut self.rest) {
            None => Err(malformed("DataRow", "truncated value length")),
            Some(-1) => Ok(None),
            Some(len) if len < -1 => Err(malformed("DataRow", "negative value length")),
            Some(len) => match (self.rest.get(..len as usize), self.rest.get(len as usize..)) {
                (Some(value), Some(rest)) => {
                    self.rest = rest;
                    Ok(Some(value))
                }
                _ => Err(malformed("DataRow", "value longer than message")),
            },
        };
        if value.is_err() {
            self.remaining = 0;
        }
        Some(value)
    }
}

/// Starts a DataRow of `count` values in `out`; returns where it starts,
/// for [`finish_message`].
pub fn begin_data_row(out: &mut BytesMut, count: u16) -> usize {
    let start = out.len();
    out.put_u8(b'D');
    out.put_i32(0);
    out.put_u16(count);
    start
}

/// Appends one DataRow value (`None`: NULL).
pub fn put_value(out: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => out.put_i32(-1),
        Some(bytes) => {
            out.put_i32(bytes.len() as i32);
            out.put_slice(bytes);
        }
    }
}

/// Writes the length word of the message that starts at `start`.
pub fn finish_message(out: &mut BytesMut, start: usize) {
    let len = (out.len() - start - 1) as i32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_row_round_trips() {
        let mut out = BytesMut::new();
        let start = begin_data_row(&mut out, 3);
        put_value(&mut out, Some(b"abc"));
        put_value(&mut out, None);
        put_value(&mut out, Some(b""));
        finish_message(&mut out, start);
        let frame = super::super::split_frame(&mut out, 1 << 20).unwrap().unwrap();
        let (count, mut values) = DataRowValues::new(frame.body()).unwrap();
        assert_eq!(count, 3);
        let read: Vec<_> = values.by_ref().map(Result::unwrap).collect();
        assert_eq!(read, [Some(&b"abc"[..]), None, Some(&b""[..])]);
        assert!(values.is_exhausted());
    }

    #[test]
    fn malformed_rows_are_errors() {
        for body in [&b""[..], b"\0\x01\0\0", b"\0\x01\0\0\0\x09abc", b"\0\x01\xff\xff\xff\xfe"] {
            let parsed = DataRowValues::new(body).map(|(_, values)| values.collect::<Result<Vec<_>, _>>());
            assert!(matches!(parsed, Err(_) | Ok(Err(_))), "{body:?}");
        }
    }
}
