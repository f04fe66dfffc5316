//! The lexical pre-scan: rules read from a statement's tokens, before (or
//! instead of) parsing it.
//!
//! Owns: the statements recognised by their leading keywords (the ones
//! `sqlparser` cannot parse, and the ones whose meaning does not depend on
//! the rest: privilege, server control, dynamic SQL, files), and the
//! token-wide rules that hold whether or not the statement parses
//! (`INTO OUTFILE`/`INTO DUMPFILE`, calls of security functions).
//! Does not own: tokens (`lexer.rs`) or the parse-tree rules (`walk.rs`).
//!
//! A statement recognised here is not parsed, so its tables and functions
//! are not listed; every one is `Admin` except `DEALLOCATE PREPARE` /
//! `DROP PREPARE` (`Utility`).

use sluice_model::sql::StatementKind;

use super::lexer::{Token, TokenKind};
use super::stmts::utf8_charset;
use crate::findings::Findings;
use crate::security_functions::is_mysql_security_function;

/// What to do with a statement after the pre-scan.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not recognised: parse and walk it.
    Parse,
    /// Recognised; `found` holds its kind and flags.
    Known,
    /// `PREPARE name FROM 'text'`: `Admin` already; the body (the decoded
    /// literal) should be classified too, for its tables.
    PrepareBody(String),
}

/// Rules that hold anywhere in a statement, parsed or not.
pub(crate) fn token_rules(tokens: &[Token<'_>], found: &mut Findings) {
    for pair in tokens.windows(2) {
        let [a, b] = pair else { continue };
        if a.is_word("INTO") && (b.is_word("OUTFILE") || b.is_word("DUMPFILE")) {
            found.flags.copy_file = true;
        }
        if b.is_punct('(')
            && let Some(name) = a.ident()
            && is_mysql_security_function(&name)
        {
            found.flags.security_function = true;
            if name.eq_ignore_ascii_case("load_file") {
                found.flags.copy_file = true;
            }
        }
    }
}

/// The statement-level rules on the leading keywords.
pub(crate) fn statement(tokens: &[Token<'_>], mode_backslash_escapes: bool, found: &mut Findings) -> Verdict {
    let word = |i: usize| tokens.get(i).filter(|t| t.kind == TokenKind::Word).map(|t| t.text.to_ascii_uppercase());
    let Some(first) = word(0) else { return Verdict::Parse };
    let second = word(1).unwrap_or_default();
    let admin = |found: &mut Findings| {
        found.raise(StatementKind::Admin);
        Verdict::Known
    };
    match first.as_str() {
        "LOAD" => {
            if second == "DATA" || second == "XML" {
                found.flags.copy_file = true;
            }
            admin(found)
        }
        "PREPARE" => {
            found.flags.dynamic_sql = true;
            found.flags.prepare_body = true;
            found.raise(StatementKind::Admin);
            match tokens {
                [_, _, from, body] if from.is_word("FROM") && body.kind == TokenKind::Str => {
                    match decode_string(body.text, mode_backslash_escapes) {
                        Some(text) => Verdict::PrepareBody(text),
                        None => Verdict::Known,
                    }
                }
                _ => Verdict::Known,
            }
        }
        "EXECUTE" => {
            found.flags.dynamic_sql = true;
            admin(found)
        }
        "DEALLOCATE" => {
            found.raise(StatementKind::Utility);
            Verdict::Known
        }
        "DROP" if second == "PREPARE" => {
            found.raise(StatementKind::Utility);
            Verdict::Known
        }
        "HANDLER" | "XA" | "INSTALL" | "UNINSTALL" | "GRANT" | "REVOKE" | "SHUTDOWN" | "RESTART" | "KILL" | "FLUSH"
        | "RESET" | "PURGE" | "CHANGE" | "BINLOG" | "CACHE" | "CLONE" | "IMPORT" | "CALL" | "BACKUP" | "STOP" => {
            admin(found)
        }
        "RENAME" if second == "USER" => admin(found),
        "START" if second == "TRANSACTION" => start_transaction(tokens, found),
        "START" => admin(found),
        "LOCK" | "UNLOCK" if second == "INSTANCE" => admin(found),
        "CREATE" | "ALTER" | "DROP" => object_statement(tokens, found),
        "SET" => set_statement(tokens, &second, found),
        _ => Verdict::Parse,
    }
}

/// Objects whose creation, change or removal is `Admin` whatever follows.
const ADMIN_OBJECTS: &[&str] = &[
    "USER",
    "ROLE",
    "PROCEDURE",
    "FUNCTION",
    "TRIGGER",
    "EVENT",
    "SERVER",
    "LOGFILE",
    "TABLESPACE",
    "RESOURCE",
    "INSTANCE",
    "DATABASE",
    "SCHEMA",
    "PACKAGE",
];

/// `CREATE`/`ALTER`/`DROP`: an explicit `DEFINER` (runs as someone else,
/// needs `SET_USER_ID`), or an object in [`ADMIN_OBJECTS`], or a spatial
/// reference system, is `Admin`. Everything else (tables, views, indexes)
/// is parsed.
fn object_statement(tokens: &[Token<'_>], found: &mut Findings) -> Verdict {
    let mut i = 1;
    while let Some(t) = tokens.get(i) {
        if t.is_word("DEFINER") {
            found.raise(StatementKind::Admin);
            return Verdict::Known;
        } else if t.is_word("OR") || t.is_word("AGGREGATE") || t.is_word("TEMPORARY") {
            i += 1;
            if tokens.get(i).is_some_and(|t| t.is_word("REPLACE")) {
                i += 1;
            }
        } else if t.is_word("ALGORITHM") {
            i += 3; // ALGORITHM = x
        } else if t.is_word("SQL") {
            i += 3; // SQL SECURITY x
        } else {
            break;
        }
    }
    let object = tokens.get(i).filter(|t| t.kind == TokenKind::Word).map(|t| t.text.to_ascii_uppercase());
    let admin = match object.as_deref() {
        Some("SPATIAL") => tokens.get(i + 1).is_some_and(|t| t.is_word("REFERENCE")),
        Some(o) => ADMIN_OBJECTS.contains(&o),
        None => false,
    };
    if admin {
        found.raise(StatementKind::Admin);
        return Verdict::Known;
    }
    Verdict::Parse
}

/// `START TRANSACTION [WITH CONSISTENT SNAPSHOT | READ ONLY | READ WRITE]`
/// (`sqlparser` does not parse the snapshot form): `Transaction`.
fn start_transaction(tokens: &[Token<'_>], found: &mut Findings) -> Verdict {
    const MODIFIERS: &[&str] = &["WITH", "CONSISTENT", "SNAPSHOT", "READ", "ONLY", "WRITE"];
    let modifiers_only = tokens[2..].iter().all(|t| t.is_punct(',') || MODIFIERS.iter().any(|m| t.is_word(m)));
    if !modifiers_only {
        return Verdict::Parse;
    }
    found.raise(StatementKind::Transaction);
    Verdict::Known
}

/// `SET ROLE`, `SET DEFAULT ROLE`: `Admin` + `set_role`. `SET PASSWORD`,
/// `SET GLOBAL`/`PERSIST`/`PERSIST_ONLY`, `@@global.`/`@@persist.`,
/// `SET RESOURCE GROUP`, MariaDB's `SET STATEMENT ... FOR`: `Admin`. Other
/// `SET`s are parsed (see `walk.rs` for which settings are harmless).
fn set_statement(tokens: &[Token<'_>], second: &str, found: &mut Findings) -> Verdict {
    let role = second == "ROLE" || (second == "DEFAULT" && tokens.get(2).is_some_and(|t| t.is_word("ROLE")));
    if role {
        found.flags.set_role = true;
        found.raise(StatementKind::Admin);
        return Verdict::Known;
    }
    // `SET CHARACTER SET x` / `SET CHARSET x` (not parsed by `sqlparser`).
    let charset_at = match second {
        "CHARSET" => Some(2),
        "CHARACTER" if tokens.get(2).is_some_and(|t| t.is_word("SET")) => Some(3),
        _ => None,
    };
    if let Some(at) = charset_at {
        let utf8 = match tokens.get(at..) {
            Some([t]) if t.kind == TokenKind::Word => utf8_charset(t.text),
            Some([t]) if t.kind == TokenKind::Str => decode_string(t.text, false).is_some_and(|v| utf8_charset(&v)),
            _ => false,
        };
        found.raise(if utf8 { StatementKind::Session } else { StatementKind::Admin });
        return Verdict::Known;
    }
    let global_scope = |t: &Token<'_>| t.is_word("GLOBAL") || t.is_word("PERSIST") || t.is_word("PERSIST_ONLY");
    let scoped_variable = tokens.windows(3).any(|w| w[0].is_punct('@') && w[1].is_punct('@') && global_scope(&w[2]));
    let admin = matches!(second, "PASSWORD" | "RESOURCE" | "STATEMENT")
        || tokens.get(1).is_some_and(global_scope)
        || scoped_variable;
    if admin {
        found.raise(StatementKind::Admin);
        return Verdict::Known;
    }
    Verdict::Parse
}

/// The value of a MySQL string literal token (quotes included), as the
/// server reads it: doubled quotes, and backslash escapes unless
/// `NO_BACKSLASH_ESCAPES`. `None` for a malformed token.
pub(crate) fn decode_string(raw: &str, backslash_escapes: bool) -> Option<String> {
    let q = raw.chars().next()?;
    let inner = raw.get(1..raw.len().checked_sub(1)?)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == q {
            // A doubled quote; the lexer guarantees the pair.
            chars.next();
            out.push(q);
        } else if c == '\\' && backslash_escapes {
            match chars.next()? {
                '0' => out.push('\0'),
                'b' => out.push('\u{8}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'Z' => out.push('\u{1a}'),
                // Kept with the backslash, for LIKE patterns.
                e @ ('%' | '_') => {
                    out.push('\\');
                    out.push(e);
                }
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_literals() {
        assert_eq!(decode_string(r"'it''s'", true).as_deref(), Some("it's"));
        assert_eq!(decode_string(r"'a\'b\\c\n'", true).as_deref(), Some("a'b\\c\n"));
        assert_eq!(decode_string(r"'a\'", false).as_deref(), Some("a\\"));
        assert_eq!(decode_string(r#""say ""hi""""#, true).as_deref(), Some("say \"hi\""));
        assert_eq!(decode_string(r"'50\%'", true).as_deref(), Some("50\\%"));
    }
}
