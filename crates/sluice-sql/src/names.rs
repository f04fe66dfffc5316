//! How identifiers from the parse tree are written in a classification.
//!
//! Owns: rendering of relation and function names (`schema.table`).
//! Does not own: case folding, which the PostgreSQL scanner already did
//! (unquoted identifiers arrive lower-cased, quoted ones as written).

use pg_query::NodeEnum;
use pg_query::protobuf::{Node, RangeVar};

/// One name part. A part that could be misread when joined with dots (it
/// contains `.` or `"`, is empty, or holds whitespace or control characters)
/// is double-quoted with inner quotes doubled, as PostgreSQL writes it, so
/// `"a.b"` (one table) never looks like `a.b` (table `b` in schema `a`).
pub(crate) fn push_ident(out: &mut String, part: &str) {
    let plain = !part.is_empty() && !part.chars().any(|c| c == '.' || c == '"' || c.is_whitespace() || c.is_control());
    if plain {
        out.push_str(part);
    } else {
        out.push('"');
        for c in part.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    }
}

/// Joins name parts with dots, quoting where needed.
pub(crate) fn join<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_ident(&mut out, part);
    }
    out
}

/// `catalog.schema.relation`, leaving out the parts the text left out.
pub(crate) fn range_var(rv: &RangeVar) -> String {
    join([rv.catalogname.as_str(), rv.schemaname.as_str(), rv.relname.as_str()].into_iter().filter(|p| !p.is_empty()))
}

/// A qualified name given as a list of `String` nodes (function names, the
/// objects of DROP and COMMENT). `None` when an item is not a `String`.
pub(crate) fn string_list(items: &[Node]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let mut parts = Vec::with_capacity(items.len());
    for item in items {
        match item.node.as_ref() {
            Some(NodeEnum::String(s)) => parts.push(s.sval.as_str()),
            _ => return None,
        }
    }
    Some(join(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let cases: &[(&[&str], &str)] = &[
            (&["patients"], "patients"),
            (&["public", "patients"], "public.patients"),
            (&["Public", "Patients"], "Public.Patients"),
            (&["a.b"], "\"a.b\""),
            (&["a\"b"], "\"a\"\"b\""),
            (&["has space"], "\"has space\""),
            (&[""], "\"\""),
            (&["db", "s", "t"], "db.s.t"),
            (&["pätients"], "pätients"),
        ];
        for (parts, want) in cases {
            assert_eq!(join(parts.iter().copied()), *want, "{parts:?}");
        }
    }
}
