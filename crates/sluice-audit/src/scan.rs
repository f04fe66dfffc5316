//! Bulk page reads for verify: a page of records packed into one value.
//!
//! Owns: the SQL that frames a page of rows into one byte string (per
//! backend), and the parser that splits it back into `RowView`s.
//! Does not: check anything (see `verify`).
//!
//! Why: through sqlx, every row costs a hand-off between threads (SQLite's
//! worker) and an allocation per column, which capped verify near 150,000
//! records/s. Packed, a page is one value, and the database's own string
//! building is far cheaper.
//!
//! A page is a seq *range*, not `ORDER BY seq LIMIT n`: no sort on the
//! server (PostgreSQL, without statistics, sorted the whole remaining table
//! for every page), and no reliance on an aggregate's input order. The
//! records of a page arrive in any order; `verify` sorts them by seq.
//!
//! # Framing
//! Per record: the seq in decimal, `;`, then for each of
//! `time, kind, session_id, principal, connection, body, prev_hash, hash`
//! either `-` (NULL) or `<byte length>:<bytes>`. Length-prefixing makes the
//! split unambiguous whatever the columns contain.

use sqlx::{Row, postgres::PgRow, sqlite::SqliteRow};

use crate::store::Store;

/// `F(x)`: the frame of one nullable text column. `body`, `prev_hash` and
/// `hash` are `NOT NULL`, so they are framed without the NULL case (a NULL
/// there would frame as empty and fail its hash check).
macro_rules! sqlite_field {
    ($c:literal) => {
        concat!("coalesce(length(CAST(", $c, " AS BLOB)) || ':' || ", $c, ", '-')")
    };
}
macro_rules! postgres_field {
    ($c:literal) => {
        concat!("coalesce(octet_length(", $c, ")::text || ':' || ", $c, ", '-')")
    };
}

/// One `printf` per record: each `||` would copy the whole string so far.
const SQLITE_PAGE: &str = concat!(
    "SELECT CAST(group_concat(printf('%d;%s%s%s%s%s%d:%s%d:%s%d:%s', seq, ",
    sqlite_field!("time"),
    ", ",
    sqlite_field!("kind"),
    ", ",
    sqlite_field!("session_id"),
    ", ",
    sqlite_field!("principal"),
    ", ",
    sqlite_field!("connection"),
    ", length(CAST(body AS BLOB)), body, length(CAST(prev_hash AS BLOB)), prev_hash, ",
    "length(CAST(hash AS BLOB)), hash), '') AS BLOB) ",
    "FROM audit_records WHERE seq > $1 AND seq <= $2"
);

const POSTGRES_PAGE: &str = concat!(
    "SELECT convert_to(string_agg(format('%s;%s%s%s%s%s%s:%s%s:%s%s:%s', seq, ",
    postgres_field!("time"),
    ", ",
    postgres_field!("kind"),
    ", ",
    postgres_field!("session_id"),
    ", ",
    postgres_field!("principal"),
    ", ",
    postgres_field!("connection"),
    ", octet_length(body), body, octet_length(prev_hash), prev_hash, octet_length(hash), hash), ''), 'UTF8') ",
    "FROM audit_records WHERE seq > $1 AND seq <= $2"
);

/// One record's columns, borrowed from a page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowView<'r> {
    pub seq: i64,
    pub time: Option<&'r str>,
    pub kind: Option<&'r str>,
    pub session_id: Option<&'r str>,
    pub principal: Option<&'r str>,
    pub connection: Option<&'r str>,
    pub body: &'r str,
    pub prev_hash: &'r str,
    pub hash: &'r str,
}

impl Store {
    /// The records with `after < seq <= upto`, framed, in no particular order.
    pub(crate) async fn page(&mut self, after: i64, upto: i64) -> Result<Vec<u8>, sqlx::Error> {
        let frames: Option<Vec<u8>> = match self {
            Store::Sqlite(c) => {
                let row: SqliteRow = sqlx::query(SQLITE_PAGE).bind(after).bind(upto).fetch_one(&mut *c).await?;
                row.try_get(0)?
            }
            Store::Postgres(c) => {
                let row: PgRow = sqlx::query(POSTGRES_PAGE).bind(after).bind(upto).fetch_one(&mut *c).await?;
                row.try_get(0)?
            }
        };
        Ok(frames.unwrap_or_default())
    }
}

/// Splits a page back into rows. An `Err` means the frames are malformed
/// (a column that is not UTF-8 text, say); parsing stops there.
pub(crate) struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    pub(crate) fn new(frames: &'a [u8]) -> Self {
        Frames { rest: frames }
    }

    /// Bytes up to (not including) `end`, and moves past `end`.
    fn until(&mut self, end: u8) -> Result<&'a [u8], String> {
        let at = self.rest.iter().position(|b| *b == end).ok_or("truncated record frame")?;
        let (head, tail) = self.rest.split_at(at);
        self.rest = &tail[1..];
        Ok(head)
    }

    fn number(digits: &[u8]) -> Result<u64, String> {
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("bad number {:?} in record frame", String::from_utf8_lossy(digits)))
    }

    fn field(&mut self, name: &str) -> Result<Option<&'a str>, String> {
        if let Some(rest) = self.rest.strip_prefix(b"-") {
            self.rest = rest;
            return Ok(None);
        }
        let len = usize::try_from(Self::number(self.until(b':')?)?).map_err(|e| e.to_string())?;
        if len > self.rest.len() {
            return Err(format!("column {name} runs past the page"));
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        std::str::from_utf8(bytes).map(Some).map_err(|_| format!("column {name} is not UTF-8 text"))
    }

    fn required(&mut self, name: &str) -> Result<&'a str, String> {
        self.field(name)?.ok_or_else(|| format!("column {name} is NULL"))
    }

    fn record(&mut self) -> Result<RowView<'a>, String> {
        let seq = i64::try_from(Self::number(self.until(b';')?)?).map_err(|e| e.to_string())?;
        Ok(RowView {
            seq,
            time: self.field("time")?,
            kind: self.field("kind")?,
            session_id: self.field("session_id")?,
            principal: self.field("principal")?,
            connection: self.field("connection")?,
            body: self.required("body")?,
            prev_hash: self.required("prev_hash")?,
            hash: self.required("hash")?,
        })
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<RowView<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let record = self.record();
        if record.is_err() {
            self.rest = &[];
        }
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_table() {
        // (frames, expected (seq, principal, body) per record, or an error)
        /// (seq, principal, body) of each record parsed, or the error.
        type Parsed<'a> = Result<Vec<(i64, Option<&'a str>, &'a str)>, &'a str>;
        let cases: &[(&[u8], Parsed<'_>)] = &[
            (b"", Ok(vec![])),
            (b"1;-----2:{}1:a1:b", Ok(vec![(1, None, "{}")])),
            (
                b"7;1:t1:k-3:p:q1:c5:{\"a\"}1:a1:b8;--1:s0:-2:{}1:b1:c",
                Ok(vec![(7, Some("p:q"), "{\"a\"}"), (8, Some(""), "{}")]),
            ),
            (b"1;-----9:{}1:a1:b", Err("column body runs past the page")),
            (b"1;-----2:{}1:a-", Err("column hash is NULL")),
            (b"1;-----2:\xff\xfe1:a1:b", Err("column body is not UTF-8 text")),
            (b"x;", Err("bad number \"x\" in record frame")),
            (b"12", Err("truncated record frame")),
        ];
        for (frames, expected) in cases {
            let parsed: Result<Vec<_>, String> =
                Frames::new(frames).map(|r| r.map(|v| (v.seq, v.principal, v.body))).collect();
            assert_eq!(parsed, expected.clone().map_err(str::to_owned), "{:?}", String::from_utf8_lossy(frames));
        }
    }
}
