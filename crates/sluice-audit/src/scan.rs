//! Bulk page reads for verify: a page of records in one buffer.
//!
//! Owns: reading a page of rows (per backend) into one buffer, and the
//! `RowView`s over it.
//! Does not: check anything (see `verify`).
//!
//! Why: through sqlx, every row costs a hand-off between threads (SQLite's
//! worker) and an allocation per column, which capped verify near 150,000
//! records/s. So a page is one buffer, its columns checked as UTF-8 once,
//! as they are copied in. SQLite: verify opens a rusqlite connection of its
//! own (`Pages::open`) and steps a page's rows on a blocking thread, copying
//! each column into the buffer; having SQLite frame the page into one value
//! instead (`printf` and `group_concat`) and taking that through sqlx cost
//! more than twice the CPU. PostgreSQL: the server frames the page into one
//! value (see Framing), which is split here.
//!
//! A page is a seq *range*, not `ORDER BY seq LIMIT n`: no sort on the
//! server (PostgreSQL, without statistics, sorted the whole remaining table
//! for every page), and no reliance on an aggregate's input order. The
//! records of a page arrive in any order; a `Page` holds them by seq.
//!
//! # Framing
//! Per record: the seq in decimal, `;`, then for each of
//! `time, kind, session_id, principal, connection, body, prev_hash, hash`
//! either `-` (NULL) or `<byte length>:<bytes>`. Length-prefixing makes the
//! split unambiguous whatever the columns contain.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use sqlx::postgres::PgConnection;
use sqlx::{Row, postgres::PgRow};

use crate::store::{Store, StoreUrl};

/// `F(x)`: the frame of one nullable text column. `body`, `prev_hash` and
/// `hash` are `NOT NULL`, so they are framed without the NULL case (a NULL
/// there would frame as empty and fail its hash check).
macro_rules! postgres_field {
    ($c:literal) => {
        concat!("coalesce(octet_length(", $c, ")::text || ':' || ", $c, ", '-')")
    };
}

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

/// The rows of a SQLite page, `seq` then the columns of [`COLUMNS`].
const SQLITE_PAGE: &str = "SELECT seq, time, kind, session_id, principal, connection, body, prev_hash, hash \
                           FROM audit_records WHERE seq > ?1 AND seq <= ?2";

/// A page's columns after `seq`, in order.
const COLUMNS: [&str; 8] = ["time", "kind", "session_id", "principal", "connection", "body", "prev_hash", "hash"];

/// How long verify's SQLite connection waits for another connection's lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One record's columns but `prev_hash` (see [`Page::link`]), borrowed
/// from a page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowView<'r> {
    pub seq: i64,
    pub time: Option<&'r str>,
    pub kind: Option<&'r str>,
    pub session_id: Option<&'r str>,
    pub principal: Option<&'r str>,
    pub connection: Option<&'r str>,
    pub body: &'r str,
    pub hash: &'r str,
}

/// Where one row's columns sit in its page's buffer: one after another
/// from `start`, `lens` bytes each ([`NULL`] for NULL), in the order of
/// [`COLUMNS`].
#[derive(Debug, Clone, Copy)]
struct Spans {
    seq: i64,
    start: usize,
    lens: [u32; 8],
}

/// The length of a NULL column in [`Spans`] (no text is that long).
const NULL: u32 = u32::MAX;

impl Spans {
    /// Where column `index` is (`None`: NULL).
    fn column(&self, index: usize) -> Option<(usize, usize)> {
        let before: usize = self.lens[..index].iter().filter(|len| **len != NULL).map(|len| *len as usize).sum();
        let start = self.start + before;
        Some(self.lens[index]).filter(|len| *len != NULL).map(|len| (start, start + len as usize))
    }
}

/// A page of records in one buffer, in seq order.
pub(crate) struct Page {
    buffer: Buffer,
    /// Where each row is, sorted by seq; or why frames could not be split.
    spans: Result<Vec<Spans>, String>,
}

/// A page's buffer: text when every column is UTF-8 (checked as it is
/// copied in), so a column is a slice of it; otherwise each column is
/// checked when read, to name the one that is not text.
enum Buffer {
    Text(String),
    Bytes(Vec<u8>),
}

impl Buffer {
    fn len(&self) -> usize {
        match self {
            Buffer::Text(text) => text.len(),
            Buffer::Bytes(bytes) => bytes.len(),
        }
    }

    /// Appends a column's bytes.
    fn push(&mut self, value: &[u8]) {
        match (&mut *self, std::str::from_utf8(value)) {
            (Buffer::Text(text), Ok(value)) => text.push_str(value),
            (Buffer::Text(text), Err(_)) => {
                let mut bytes = std::mem::take(text).into_bytes();
                bytes.extend_from_slice(value);
                *self = Buffer::Bytes(bytes);
            }
            (Buffer::Bytes(bytes), _) => bytes.extend_from_slice(value),
        }
    }

    /// Column `name`, at `start..end`, as text.
    fn column(&self, (start, end): (usize, usize), name: &str) -> Result<&str, String> {
        let past = || format!("column {name} runs past the page");
        let not_text = || format!("column {name} is not UTF-8 text");
        match self {
            Buffer::Text(text) if end > text.len() => Err(past()),
            Buffer::Text(text) => text.get(start..end).ok_or_else(not_text),
            Buffer::Bytes(bytes) => {
                std::str::from_utf8(bytes.get(start..end).ok_or_else(past)?).map_err(|_| not_text())
            }
        }
    }
}

/// Builds a page row by row (reusing a checked page's memory).
struct PageBuilder {
    buffer: Buffer,
    spans: Vec<Spans>,
}

impl PageBuilder {
    /// `reuse`: a checked page; `(size, rows)`: room to make at once.
    fn new(reuse: Option<Page>, (size, rows): (usize, usize)) -> Self {
        let (mut text, mut spans) = match reuse {
            Some(Page { buffer: Buffer::Text(text), spans }) => (text, spans.unwrap_or_default()),
            _ => (String::new(), Vec::new()),
        };
        text.clear();
        spans.clear();
        text.reserve(size);
        spans.reserve(rows);
        PageBuilder { buffer: Buffer::Text(text), spans }
    }

    fn row(&mut self, seq: i64) {
        self.spans.push(Spans { seq, start: self.buffer.len(), lens: [NULL; 8] });
    }

    /// The next column of the last row (`None`: NULL).
    fn column(&mut self, index: usize, value: Option<&[u8]>) -> Result<(), String> {
        let (Some(row), Some(value)) = (self.spans.last_mut(), value) else { return Ok(()) };
        row.lens[index] = u32::try_from(value.len())
            .ok()
            .filter(|len| *len != NULL)
            .ok_or_else(|| format!("column {} is too long ({} bytes)", COLUMNS[index], value.len()))?;
        self.buffer.push(value);
        Ok(())
    }

    /// The page, its rows sorted by seq (usually they already are, which
    /// the sort sees in one pass).
    fn finish(self, malformed: Option<String>) -> Page {
        let PageBuilder { buffer, mut spans } = self;
        spans.sort_by_key(|row| row.seq);
        Page { buffer, spans: malformed.map_or(Ok(spans), Err) }
    }
}

impl Page {
    /// Why the page cannot be read at all (its frames are cut short).
    pub(crate) fn malformed(&self) -> Option<&str> {
        self.spans.as_ref().err().map(String::as_str)
    }

    /// Rows in the page (none if it is malformed).
    pub(crate) fn len(&self) -> usize {
        self.spans.as_ref().map_or(0, Vec::len)
    }

    /// Row `i` (below [`Page::len`]), in seq order, but its `prev_hash`.
    /// An `Err` means the row is malformed: a column that is not UTF-8 text,
    /// a NULL body or hash.
    pub(crate) fn row(&self, i: usize) -> Result<RowView<'_>, String> {
        let row = self.spans(i)?;
        Ok(RowView {
            seq: row.seq,
            time: self.column(row, 0)?,
            kind: self.column(row, 1)?,
            session_id: self.column(row, 2)?,
            principal: self.column(row, 3)?,
            connection: self.column(row, 4)?,
            body: self.required(row, 5)?,
            hash: self.required(row, 7)?,
        })
    }

    /// Row `i`'s seq, body, prev_hash and hash, as [`Page::row`] reads
    /// them: what checking it in order needs.
    pub(crate) fn link(&self, i: usize) -> Result<(i64, &str, &str, &str), String> {
        let row = self.spans(i)?;
        Ok((row.seq, self.required(row, 5)?, self.required(row, 6)?, self.required(row, 7)?))
    }

    fn spans(&self, i: usize) -> Result<&Spans, String> {
        self.spans.as_ref().ok().and_then(|spans| spans.get(i)).ok_or_else(|| "no such row in the page".to_owned())
    }

    /// Column `index` (of [`COLUMNS`]) of `row`.
    fn column(&self, row: &Spans, index: usize) -> Result<Option<&str>, String> {
        row.column(index).map(|span| self.buffer.column(span, COLUMNS[index])).transpose()
    }

    /// Column `index` of `row`, which must not be NULL.
    fn required(&self, row: &Spans, index: usize) -> Result<&str, String> {
        self.column(row, index)?.ok_or_else(|| format!("column {} is NULL", COLUMNS[index]))
    }
}

/// Where verify reads its pages.
pub(crate) enum Pages<'s> {
    /// A SQLite store: a connection of verify's own, used on a blocking
    /// thread; checked pages, whose buffers the next reads reuse; and the
    /// size of the last page read.
    Sqlite { conn: Arc<Mutex<rusqlite::Connection>>, spares: Vec<Page>, last: (usize, usize) },
    /// A PostgreSQL store: the reader's connection; the server frames pages.
    Postgres(&'s mut PgConnection),
}

impl<'s> Pages<'s> {
    /// Pages of the log `target` names, which `store` is connected to.
    pub(crate) fn open(target: &StoreUrl, store: &'s mut Store) -> Result<Self, String> {
        match (target, store) {
            (StoreUrl::Sqlite(options), Store::Sqlite(_)) => {
                // Read-write like the reader's own connection (a WAL log's
                // readers may need to create its `-shm` file), never creating
                // the file; it only ever runs `SQLITE_PAGE`.
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn =
                    rusqlite::Connection::open_with_flags(options.get_filename(), flags).map_err(|e| e.to_string())?;
                conn.busy_timeout(SQLITE_BUSY_TIMEOUT).map_err(|e| e.to_string())?;
                Ok(Pages::Sqlite { conn: Arc::new(Mutex::new(conn)), spares: Vec::new(), last: (0, 0) })
            }
            (_, Store::Postgres(c)) => Ok(Pages::Postgres(c)),
            (StoreUrl::Postgres(_), Store::Sqlite(_)) => Err("a PostgreSQL URL with a SQLite connection".into()),
        }
    }

    /// The records with `after < seq <= upto`.
    pub(crate) async fn page(&mut self, after: i64, upto: i64) -> Result<Page, String> {
        match self {
            Pages::Sqlite { conn, spares, last } => {
                let (conn, reuse, size) = (conn.clone(), spares.pop(), *last);
                let page = tokio::task::spawn_blocking(move || {
                    let conn = conn.lock().map_err(|_| "verify's SQLite connection was poisoned".to_owned())?;
                    sqlite_page(&conn, after, upto, reuse, size).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| format!("the page read stopped: {e}"))??;
                *last = (page.buffer.len(), page.len());
                Ok(page)
            }
            Pages::Postgres(c) => {
                let row: PgRow = sqlx::query(POSTGRES_PAGE)
                    .bind(after)
                    .bind(upto)
                    .fetch_one(&mut **c)
                    .await
                    .map_err(|e| e.to_string())?;
                let frames: Option<Vec<u8>> = row.try_get(0).map_err(|e| e.to_string())?;
                tokio::task::spawn_blocking(move || split_frames(&frames.unwrap_or_default()))
                    .await
                    .map_err(|e| format!("the page read stopped: {e}"))
            }
        }
    }

    /// Hands back a checked page, whose buffers a later read may reuse: a
    /// fresh page's memory costs a page fault per 4 KiB, and growing it, copies.
    pub(crate) fn recycle(&mut self, page: Page) {
        if let Pages::Sqlite { spares, .. } = self {
            spares.push(page);
        }
    }
}

/// Steps the rows of a SQLite page, copying their columns into one buffer
/// (`reuse`'s, if given), with room for `(bytes, rows)` at once.
fn sqlite_page(
    conn: &rusqlite::Connection,
    after: i64,
    upto: i64,
    reuse: Option<Page>,
    (size, rows): (usize, usize),
) -> rusqlite::Result<Page> {
    // A little more than the last page, which the next one is usually like.
    let mut page = PageBuilder::new(reuse, (size + size / 8, rows + rows / 8));
    let mut statement = conn.prepare_cached(SQLITE_PAGE)?;
    let mut rows = statement.query([after, upto])?;
    let mut malformed = None;
    while let Some(row) = rows.next()? {
        page.row(row.get(0)?);
        for index in 0..COLUMNS.len() {
            let column = match row.get_ref(index + 1)? {
                ValueRef::Null => page.column(index, None),
                ValueRef::Text(value) | ValueRef::Blob(value) => page.column(index, Some(value)),
                // Not in a TEXT column, but as SQLite would print them.
                ValueRef::Integer(n) => page.column(index, Some(n.to_string().as_bytes())),
                ValueRef::Real(x) => page.column(index, Some(x.to_string().as_bytes())),
            };
            if let Err(error) = column {
                malformed.get_or_insert(error);
            }
        }
    }
    Ok(page.finish(malformed))
}

/// Splits frames (see Framing) into a page; stops at the first malformed
/// record, which makes the whole page malformed.
fn split_frames(frames: &[u8]) -> Page {
    let mut page = PageBuilder::new(None, (frames.len(), 0));
    let malformed = frames_into(frames, &mut page).err();
    page.finish(malformed)
}

fn frames_into(frames: &[u8], page: &mut PageBuilder) -> Result<(), String> {
    let mut at = 0;
    // Bytes from `at` up to (not including) `end`, and moves past `end`.
    let until = |at: &mut usize, end: u8| -> Result<std::ops::Range<usize>, String> {
        let len = frames[*at..].iter().position(|b| *b == end).ok_or("truncated record frame")?;
        let range = *at..*at + len;
        *at += len + 1;
        Ok(range)
    };
    let number = |digits: &[u8]| -> Result<i64, String> {
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("bad number {:?} in record frame", String::from_utf8_lossy(digits)))
    };
    while at < frames.len() {
        page.row(number(&frames[until(&mut at, b';')?])?);
        for (index, name) in COLUMNS.iter().enumerate() {
            if frames.get(at) == Some(&b'-') {
                at += 1;
                continue;
            }
            let len = usize::try_from(number(&frames[until(&mut at, b':')?])?).map_err(|e| e.to_string())?;
            if len > frames.len() - at {
                return Err(format!("column {name} runs past the page"));
            }
            page.column(index, Some(&frames[at..at + len]))?;
            at += len;
        }
    }
    Ok(())
}

#[cfg(test)]
impl Page {
    /// A page of these rows: a seq and the columns of [`COLUMNS`] each.
    pub(crate) fn of_rows<S: AsRef<str>>(rows: &[(i64, [Option<S>; 8])]) -> Page {
        let mut page = PageBuilder::new(None, (0, rows.len()));
        for (seq, columns) in rows {
            page.row(*seq);
            for (index, value) in columns.iter().enumerate() {
                page.column(index, value.as_ref().map(|value| value.as_ref().as_bytes())).expect("a short column");
            }
        }
        page.finish(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_table() {
        /// (seq, principal, body, prev_hash) of each record read, in seq
        /// order, or the first error.
        type Parsed<'a> = Result<Vec<(i64, Option<&'a str>, &'a str, &'a str)>, &'a str>;
        let cases: &[(&[u8], Parsed<'_>)] = &[
            (b"", Ok(vec![])),
            (b"1;-----2:{}1:a1:b", Ok(vec![(1, None, "{}", "a")])),
            (
                b"8;--1:s0:-2:{}1:b1:c7;1:t1:k-3:p:q1:c5:{\"a\"}1:a1:b",
                Ok(vec![(7, Some("p:q"), "{\"a\"}", "a"), (8, Some(""), "{}", "b")]),
            ),
            (b"1;-----9:{}1:a1:b", Err("column body runs past the page")),
            (b"1;-----2:{}1:a-", Err("column hash is NULL")),
            (b"1;-----2:{}-1:b", Err("column prev_hash is NULL")),
            (b"1;-----2:\xff\xfe1:a1:b", Err("column body is not UTF-8 text")),
            (b"1;-----2:{}1:\xff1:b", Err("column prev_hash is not UTF-8 text")),
            (b"-5;-----2:{}1:a1:b", Ok(vec![(-5, None, "{}", "a")])),
            (b"x;", Err("bad number \"x\" in record frame")),
            (b"12", Err("truncated record frame")),
        ];
        for (frames, expected) in cases {
            let page = split_frames(frames);
            let read = |i| {
                let row = page.row(i)?;
                let (seq, body, prev_hash, hash) = page.link(i)?;
                assert_eq!((seq, body, hash), (row.seq, row.body, row.hash));
                Ok((row.seq, row.principal, row.body, prev_hash))
            };
            let parsed: Result<Vec<_>, String> = match page.malformed() {
                Some(error) => Err(error.to_owned()),
                None => (0..page.len()).map(read).collect(),
            };
            assert_eq!(parsed, expected.clone().map_err(str::to_owned), "{:?}", String::from_utf8_lossy(frames));
        }
    }

    #[test]
    fn columns_follow_one_another_and_nulls_take_no_room() {
        let page = Page::of_rows(&[
            (2, [None, Some("k"), None, Some("pé"), None, Some("{}"), Some("a"), Some("b")]),
            (1, [Some("t"), None, Some(""), None, Some("c"), Some("{\"x\":1}"), Some("z"), Some("y")]),
        ]);
        let first = page.row(0).expect("row");
        assert_eq!(
            (first.seq, first.time, first.kind, first.session_id, first.principal, first.connection, first.body),
            (1, Some("t"), None, Some(""), None, Some("c"), "{\"x\":1}")
        );
        assert_eq!(page.link(0), Ok((1, "{\"x\":1}", "z", "y")));
        let second = page.row(1).expect("row");
        assert_eq!((second.seq, second.kind, second.principal, second.hash), (2, Some("k"), Some("pé"), "b"));
        assert_eq!(page.link(1), Ok((2, "{}", "a", "b")));
        assert!(page.row(2).is_err());
    }
}
