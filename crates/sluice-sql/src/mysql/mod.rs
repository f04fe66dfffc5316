//! MySQL / MariaDB classification: lex, pre-scan, parse each statement with
//! `sqlparser`, walk, fingerprint.
//!
//! Owns: [`MySqlMode`], the pipeline from text to [`SqlClassification`],
//! the check that `sqlparser` read the quoting and comments as the lexer
//! did, and the fingerprint.
//! Does not own: statement splitting and quoting (`lexer.rs`), keyword
//! rules (`prescan.rs`), parse-tree rules (`walk.rs`, `expr.rs`,
//! `stmts.rs`), request-wide rules (`findings.rs`) or caching.
//!
//! Layout: `lexer.rs` splits the text into statements as the server does
//! and normalises each for the parser; `prescan.rs` decides the statements
//! recognisable by keywords (and the ones `sqlparser` cannot parse);
//! `walk.rs` (queries, DML), `expr.rs` (expressions) and `stmts.rs` (all
//! other statements, `SET`) walk the parse tree over an allow-list.

mod expr;
mod lexer;
mod prescan;
mod stmts;
mod walk;

use sha2::{Digest, Sha256};
use sluice_model::sql::{SqlClassification, StatementKind};
use sqlparser::ast::Statement as Ast;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token as SqlToken, Tokenizer, Whitespace};

pub use stmts::MYSQL_HARMLESS_SETTINGS;

use crate::findings::{self, Findings};
use lexer::{Statement, TokenKind};
use prescan::Verdict;
use walk::Walker;

/// How the session reads quotes (tracked per session by the adapter).
///
/// The same bytes can hold one statement or several depending on these:
/// with `NO_BACKSLASH_ESCAPES` off (the default), `\'` inside a string does
/// not end it; with `ANSI_QUOTES` on, `"..."` is an identifier (where a
/// backslash is not an escape) rather than a string. The server reports
/// `NO_BACKSLASH_ESCAPES` in every OK packet's status flags
/// (`SERVER_STATUS_NO_BACKSLASH_ESCAPES`); `ANSI_QUOTES` only through
/// `@@sql_mode` (see [`MySqlMode::from_sql_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MySqlMode {
    /// `NO_BACKSLASH_ESCAPES` is in the session's `sql_mode`.
    pub no_backslash_escapes: bool,
    /// `ANSI_QUOTES` (or `ANSI`, which includes it) is in the session's
    /// `sql_mode`.
    pub ansi_quotes: bool,
}

impl MySqlMode {
    /// The server default: backslash escapes on, `"..."` is a string.
    pub const DEFAULT: MySqlMode = MySqlMode { no_backslash_escapes: false, ansi_quotes: false };

    /// The mode a `sql_mode` value (`@@sql_mode`, comma-separated, any
    /// case) gives.
    pub fn from_sql_mode(sql_mode: &str) -> MySqlMode {
        let has = |want: &str| sql_mode.split(',').any(|m| m.trim().eq_ignore_ascii_case(want));
        MySqlMode { no_backslash_escapes: has("NO_BACKSLASH_ESCAPES"), ansi_quotes: has("ANSI_QUOTES") || has("ANSI") }
    }

    /// Whether the mode can change how `sql` is read: only a backslash
    /// (in a string) or a double quote can. When false, any mode gives the
    /// same result; an adapter unsure of the mode should classify in every
    /// mode when it is true and act on the most dangerous result.
    pub fn affects(sql: &str) -> bool {
        sql.contains(['\\', '"'])
    }

    /// The byte naming MySQL and this mode in raw fingerprints and the
    /// fingerprint (PostgreSQL uses 0 and 1).
    pub(crate) fn tag(self) -> u8 {
        0x10 | u8::from(self.no_backslash_escapes) | (u8::from(self.ansi_quotes) << 1)
    }
}

/// Classifies one request text. Never panics on any input: a panic inside
/// (which would be a bug) is caught and reported as unparseable `Admin`.
pub(crate) fn classify(sql: &str, mode: MySqlMode) -> SqlClassification {
    std::panic::catch_unwind(|| classify_inner(sql, mode)).unwrap_or_else(|_| findings::unparseable(mode.tag(), sql))
}

fn classify_inner(sql: &str, mode: MySqlMode) -> SqlClassification {
    let Ok(statements) = lexer::split(sql, mode) else {
        return findings::unparseable(mode.tag(), sql);
    };
    let found = request(&statements, mode, true);
    let fingerprint = fingerprint(&statements, mode);
    found.into_classification(u32::try_from(statements.len()).unwrap_or(u32::MAX), fingerprint)
}

/// Every statement of a request (or of a `PREPARE` body, with
/// `outer == false`: its own `PREPARE` bodies are not followed).
fn request(statements: &[Statement<'_>], mode: MySqlMode, outer: bool) -> Findings {
    let mut found = Findings::default();
    for stmt in statements {
        found.absorb(statement(stmt, mode, outer));
    }
    if statements.len() > 1 {
        found.flags.multi_statement = true;
    }
    found
}

fn statement(stmt: &Statement<'_>, mode: MySqlMode, outer: bool) -> Findings {
    let mut found = Findings::default();
    prescan::token_rules(&stmt.tokens, &mut found);
    match prescan::statement(&stmt.tokens, !mode.no_backslash_escapes, &mut found) {
        Verdict::Known => return found,
        Verdict::PrepareBody(body) => {
            if outer {
                match lexer::split(&body, mode) {
                    Ok(inner) => found.absorb(request(&inner, mode, false)),
                    Err(_) => found.flags.unparseable = true,
                }
            }
            return found;
        }
        Verdict::Parse => {}
    }
    if stmt.longest_run > MAX_RUN {
        found.flags.unparseable = true;
        found.raise(StatementKind::Admin);
        return found;
    }
    match parse(stmt) {
        Some(ast) => {
            let mut walker = Walker::default();
            walker.statement(&ast);
            found.absorb(walker.found);
        }
        None => {
            found.flags.unparseable = true;
            found.raise(StatementKind::Admin);
        }
    }
    found
}

/// The longest run of tokens at one parenthesis level (see
/// `Statement::longest_run`) given to the parser. `sqlparser` builds an
/// operator chain without counting it against its recursion limit, and
/// dropping a chain tens of thousands deep overflows a 2 MiB stack; the
/// walker already gives up (`Admin`) past `walk::MAX_DEPTH` levels, so
/// longer runs are `Admin` + `unparseable` without parsing.
const MAX_RUN: usize = 8_192;

/// Parses one normalised statement with `sqlparser`'s `MySqlDialect` (its
/// recursion limit left at the default). `None` when it does not parse,
/// is not exactly one statement, or `sqlparser` read quoting or comments
/// differently from the lexer (a comment the lexer did not see, or a
/// different number of quoted tokens).
fn parse(stmt: &Statement<'_>) -> Option<Ast> {
    let dialect = MySqlDialect {};
    let tokens = Tokenizer::new(&dialect, &stmt.normalized).tokenize_with_location().ok()?;
    let mut quoted = 0;
    for t in &tokens {
        match &t.token {
            SqlToken::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => {
                return None;
            }
            SqlToken::Word(w) if w.quote_style.is_some() => quoted += 1,
            SqlToken::SingleQuotedString(_)
            | SqlToken::DoubleQuotedString(_)
            | SqlToken::TripleSingleQuotedString(_)
            | SqlToken::TripleDoubleQuotedString(_)
            | SqlToken::DollarQuotedString(_)
            | SqlToken::SingleQuotedByteStringLiteral(_)
            | SqlToken::DoubleQuotedByteStringLiteral(_)
            | SqlToken::TripleSingleQuotedByteStringLiteral(_)
            | SqlToken::TripleDoubleQuotedByteStringLiteral(_)
            | SqlToken::SingleQuotedRawStringLiteral(_)
            | SqlToken::DoubleQuotedRawStringLiteral(_)
            | SqlToken::TripleSingleQuotedRawStringLiteral(_)
            | SqlToken::TripleDoubleQuotedRawStringLiteral(_)
            | SqlToken::NationalStringLiteral(_)
            | SqlToken::QuoteDelimitedStringLiteral(_)
            | SqlToken::NationalQuoteDelimitedStringLiteral(_)
            | SqlToken::EscapedStringLiteral(_)
            | SqlToken::UnicodeStringLiteral(_)
            | SqlToken::HexStringLiteral(_) => quoted += 1,
            _ => {}
        }
    }
    if quoted != stmt.quoted {
        return None;
    }
    let mut statements = Parser::new(&dialect).with_tokens_with_locations(tokens).parse_statements().ok()?;
    if statements.len() != 1 {
        return None;
    }
    statements.pop()
}

/// Statements whose literals are data, so the fingerprint ignores them.
const DATA_STATEMENTS: &[&str] = &["SELECT", "INSERT", "REPLACE", "UPDATE", "DELETE", "WITH", "VALUES", "TABLE"];

/// SHA-256 (first 16 bytes, hex) over the mode and the executed tokens:
/// comments dropped, executable comments' contents kept, keywords and
/// identifiers lower-cased, whitespace ignored. In data statements
/// ([`DATA_STATEMENTS`]) string and number literals count as `?`, so
/// statements that differ only in constants share a fingerprint; in every
/// other statement (SET, PREPARE, GRANT, LOAD DATA, ...) literals are
/// significant.
fn fingerprint(statements: &[Statement<'_>], mode: MySqlMode) -> String {
    let mut hash = Sha256::new();
    hash.update([mode.tag()]);
    for stmt in statements {
        let data = stmt.tokens.first().is_some_and(|t| DATA_STATEMENTS.iter().any(|kw| t.is_word(kw)));
        for token in &stmt.tokens {
            let (kind, text) = match token.kind {
                TokenKind::Word => (b'w', token.text.to_lowercase()),
                TokenKind::QuotedIdent => (b'i', token.ident().unwrap_or_default().to_lowercase()),
                TokenKind::Str | TokenKind::Number if data => (b'?', String::new()),
                TokenKind::Str => (b's', token.text.to_owned()),
                TokenKind::Number => (b'n', token.text.to_owned()),
                TokenKind::Punct => (b'p', token.text.to_owned()),
            };
            hash.update([kind]);
            hash.update(u64::try_from(text.len()).unwrap_or(u64::MAX).to_le_bytes());
            hash.update(text.as_bytes());
        }
        hash.update([b';']);
    }
    let digest = hash.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(sql: &str) -> String {
        classify(sql, MySqlMode::DEFAULT).fingerprint
    }

    #[test]
    fn fingerprint_ignores_constants_and_comments_only() {
        assert_eq!(fp("SELECT * FROM t WHERE a = 1"), fp("select *  from T where a = 2 -- x"));
        assert_eq!(fp("SELECT 'a'"), fp("SELECT 'b'"));
        assert_ne!(fp("SELECT * FROM patients"), fp("SELECT * FROM secrets"));
        assert_ne!(fp("PREPARE s FROM 'SELECT 1'"), fp("PREPARE s FROM 'DROP TABLE t'"));
        assert_ne!(fp("SELECT 1 /*! , 2 */"), fp("SELECT 1 /* , 2 */"));
        assert_ne!(fp("SELECT 1"), classify("SELECT 1", MySqlMode::from_sql_mode("ANSI")).fingerprint);
    }

    #[test]
    fn mode_from_sql_mode() {
        assert_eq!(MySqlMode::from_sql_mode(""), MySqlMode::DEFAULT);
        let m = MySqlMode::from_sql_mode("STRICT_TRANS_TABLES,no_backslash_escapes");
        assert!(m.no_backslash_escapes && !m.ansi_quotes);
        assert!(MySqlMode::from_sql_mode("ANSI").ansi_quotes);
        assert!(MySqlMode::from_sql_mode("ANSI_QUOTES,ONLY_FULL_GROUP_BY").ansi_quotes);
    }
}
