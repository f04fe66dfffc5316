//! A MySQL lexer just strong enough to split a request into the statements
//! the server will run, and to hand each one to `sqlparser` in a form it
//! reads the same way.
//!
//! Owns: quoting (`'...'`, `"..."`, `` `...` ``, with and without
//! `NO_BACKSLASH_ESCAPES` and `ANSI_QUOTES`), comments (`#`, `-- `,
//! `/* */`), executable comments (`/*! */`, `/*!50001 */`, MariaDB's
//! `/*M! */`), statement boundaries (`;`), the per-statement tokens the
//! pre-scan and the fingerprint read, and the normalised text the parser
//! reads.
//! Does not own: what statements mean (`prescan.rs`, `walk.rs`).
//!
//! The normalised text is the statement with every comment replaced by a
//! space, executable-comment markers replaced by spaces (their contents
//! run, so they stay), and, under `NO_BACKSLASH_ESCAPES`, backslashes in
//! string literals doubled (so `sqlparser`, which always reads backslash
//! escapes, reads the same string); under `ANSI_QUOTES`, `"..."` becomes a
//! backtick-quoted identifier. Anything this lexer is not sure how the
//! server reads is an error, and the request is `Admin` + `unparseable`:
//! an unterminated string, identifier or comment; a NUL byte; Unicode
//! whitespace outside quotes (MySQL reads it as part of an identifier,
//! `sqlparser` as a space); a comment inside an executable comment.

use super::MySqlMode;

/// Why the text could not be lexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LexError {
    Unterminated,
    Ambiguous,
}

/// What a token is, as far as the pre-scan and the fingerprint care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A keyword or unquoted identifier (letters, digits, `_`, `$`, non-ASCII).
    Word,
    /// A number (starts with a digit).
    Number,
    /// A string literal, including its quotes.
    Str,
    /// A backtick- (or, under `ANSI_QUOTES`, double-) quoted identifier.
    QuotedIdent,
    /// One punctuation character.
    Punct,
}

/// One token of the executed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: TokenKind,
    /// The token as written (quotes included).
    pub(crate) text: &'a str,
}

impl Token<'_> {
    /// Whether this is the unquoted word `kw` (ASCII case-insensitive).
    pub(crate) fn is_word(&self, kw: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    pub(crate) fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct && self.text.len() == 1 && self.text.starts_with(c)
    }

    /// An identifier's name: a word as written, a quoted identifier
    /// unquoted (doubled quote characters undone).
    pub(crate) fn ident(&self) -> Option<String> {
        match self.kind {
            TokenKind::Word => Some(self.text.to_owned()),
            TokenKind::QuotedIdent => {
                let q = self.text.chars().next()?;
                let inner = self.text.get(1..self.text.len() - 1)?;
                Some(inner.replace(&format!("{q}{q}"), &q.to_string()))
            }
            _ => None,
        }
    }
}

/// One statement: its tokens and the text `sqlparser` is given.
#[derive(Debug, Default)]
pub(crate) struct Statement<'a> {
    pub(crate) tokens: Vec<Token<'a>>,
    pub(crate) normalized: String,
    /// Quoted tokens (strings and quoted identifiers): `sqlparser` must
    /// find exactly as many, or it read the quoting differently.
    pub(crate) quoted: usize,
    /// The longest run of tokens at one parenthesis level without a comma:
    /// a bound on the longest chain of operators (`a + b + ...`,
    /// `x IS NULL IS NULL ...`) the parser can build from this statement.
    pub(crate) longest_run: usize,
    /// Run lengths of the open parenthesis levels, innermost last.
    runs: Vec<usize>,
}

impl Statement<'_> {
    fn count_run(&mut self, token: &Token<'_>) {
        if self.runs.is_empty() {
            self.runs.push(0);
        }
        if token.is_punct(',') {
            if let Some(top) = self.runs.last_mut() {
                *top = 0;
            }
            return;
        }
        if token.is_punct(')') && self.runs.len() > 1 {
            self.runs.pop();
        }
        if let Some(top) = self.runs.last_mut() {
            *top += 1;
            self.longest_run = self.longest_run.max(*top);
        }
        if token.is_punct('(') {
            self.runs.push(0);
        }
    }
}

/// Splits `sql` into the non-empty statements the server would run.
pub(crate) fn split(sql: &str, mode: MySqlMode) -> Result<Vec<Statement<'_>>, LexError> {
    // The server's lexer treats a NUL byte as the end of the text in some
    // states and not in others: refuse it everywhere.
    if sql.contains('\0') {
        return Err(LexError::Ambiguous);
    }
    let mut lexer = Lexer { sql, bytes: sql.as_bytes(), pos: 0, mode, in_exec: false };
    let mut out = Vec::new();
    let mut cur = Statement::default();
    while let Some(step) = lexer.next()? {
        match step {
            Step::Space => {
                if !cur.normalized.is_empty() && !cur.normalized.ends_with(' ') {
                    cur.normalized.push(' ');
                }
            }
            Step::End => {
                if !cur.tokens.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                cur.normalized.clear();
            }
            Step::Token(token, normalized) => {
                if matches!(token.kind, TokenKind::Str | TokenKind::QuotedIdent) {
                    cur.quoted += 1;
                }
                match normalized {
                    Some(n) => cur.normalized.push_str(&n),
                    None => cur.normalized.push_str(token.text),
                }
                cur.count_run(&token);
                cur.tokens.push(token);
            }
        }
    }
    if lexer.in_exec {
        return Err(LexError::Unterminated);
    }
    if !cur.tokens.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

enum Step<'a> {
    /// Whitespace, a comment, or an executable-comment marker.
    Space,
    /// `;`
    End,
    /// A token, with its normalised spelling when it differs.
    Token(Token<'a>, Option<String>),
}

struct Lexer<'a> {
    sql: &'a str,
    bytes: &'a [u8],
    pos: usize,
    mode: MySqlMode,
    /// Inside `/*! ... */`: the text runs, `*/` ends it.
    in_exec: bool,
}

/// MySQL ends `-- ` only at a space or control character (or the end).
fn dash_comment_follows(b: Option<&u8>) -> bool {
    b.is_none_or(|&b| b <= b' ' || b == 0x7f)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Lexer<'a> {
    fn peek(&self, ahead: usize) -> Option<&u8> {
        self.bytes.get(self.pos + ahead)
    }

    fn token(&mut self, kind: TokenKind, end: usize, normalized: Option<String>) -> Step<'a> {
        let text = &self.sql[self.pos..end];
        self.pos = end;
        Step::Token(Token { kind, text }, normalized)
    }

    fn next(&mut self) -> Result<Option<Step<'a>>, LexError> {
        let Some(&b) = self.peek(0) else { return Ok(None) };
        let step = match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                self.pos += 1;
                Step::Space
            }
            b'#' => self.line_comment()?,
            b'-' if self.peek(1) == Some(&b'-') && dash_comment_follows(self.peek(2)) => self.line_comment()?,
            b'/' if self.peek(1) == Some(&b'*') => self.block_comment()?,
            b'*' if self.in_exec && self.peek(1) == Some(&b'/') => {
                self.in_exec = false;
                self.pos += 2;
                Step::Space
            }
            b';' => {
                self.pos += 1;
                Step::End
            }
            b'\'' => self.quoted(b'\'', TokenKind::Str)?,
            b'"' if self.mode.ansi_quotes => self.quoted(b'"', TokenKind::QuotedIdent)?,
            b'"' => self.quoted(b'"', TokenKind::Str)?,
            b'`' => self.quoted(b'`', TokenKind::QuotedIdent)?,
            b if is_word_byte(b) => self.word()?,
            _ => {
                let end = self.pos + 1;
                self.token(TokenKind::Punct, end, None)
            }
        };
        Ok(Some(step))
    }

    fn line_comment(&mut self) -> Result<Step<'a>, LexError> {
        if self.in_exec {
            return Err(LexError::Ambiguous);
        }
        match self.bytes[self.pos..].iter().position(|&b| b == b'\n') {
            Some(n) => self.pos += n + 1,
            None => self.pos = self.bytes.len(),
        }
        Ok(Step::Space)
    }

    /// `/* ... */`, an optimizer hint `/*+ ... */` (a comment as far as
    /// statements go), or an executable comment `/*! ...`, `/*!50001 ...`,
    /// `/*M! ...`, `/*M!100101 ...` whose contents run.
    fn block_comment(&mut self) -> Result<Step<'a>, LexError> {
        if self.in_exec {
            return Err(LexError::Ambiguous);
        }
        let rest = &self.bytes[self.pos + 2..];
        let marker = if rest.starts_with(b"!") {
            Some(1)
        } else if rest.starts_with(b"M!") {
            Some(2)
        } else {
            None
        };
        if let Some(marker) = marker {
            let digits = rest[marker..].iter().take(6).take_while(|b| b.is_ascii_digit()).count();
            self.pos += 2 + marker + digits;
            self.in_exec = true;
            return Ok(Step::Space);
        }
        match rest.windows(2).position(|w| w == b"*/") {
            Some(n) => {
                self.pos += 2 + n + 2;
                Ok(Step::Space)
            }
            None => Err(LexError::Unterminated),
        }
    }

    /// A quoted string or identifier. Doubling the quote escapes it; in
    /// strings a backslash escapes the next character unless
    /// `NO_BACKSLASH_ESCAPES` is on.
    fn quoted(&mut self, q: u8, kind: TokenKind) -> Result<Step<'a>, LexError> {
        let backslash_escapes = kind == TokenKind::Str && !self.mode.no_backslash_escapes;
        let mut i = self.pos + 1;
        loop {
            match self.bytes.get(i) {
                None => return Err(LexError::Unterminated),
                Some(&b) if b == q => {
                    if self.bytes.get(i + 1) == Some(&q) {
                        i += 2;
                    } else {
                        break;
                    }
                }
                Some(b'\\') if backslash_escapes => i += 2,
                Some(_) => i += 1,
            }
        }
        let end = i + 1;
        // Slicing at `end` is safe: the closing quote is ASCII.
        let raw = self.sql.get(self.pos..end).ok_or(LexError::Ambiguous)?;
        let normalized = if q == b'"' && kind == TokenKind::QuotedIdent {
            let inner = &raw[1..raw.len() - 1];
            Some(format!("`{}`", inner.replace("\"\"", "\"").replace('`', "``")))
        } else if kind == TokenKind::Str && self.mode.no_backslash_escapes && raw.contains('\\') {
            Some(raw.replace('\\', "\\\\"))
        } else {
            None
        };
        Ok(self.token(kind, end, normalized))
    }

    fn word(&mut self) -> Result<Step<'a>, LexError> {
        let mut end = self.pos;
        while end < self.bytes.len() && is_word_byte(self.bytes[end]) {
            end += 1;
        }
        // A decimal point inside a number (`1.5`).
        if self.bytes[self.pos].is_ascii_digit()
            && self.bytes.get(end) == Some(&b'.')
            && self.bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
        {
            end += 1;
            while end < self.bytes.len() && is_word_byte(self.bytes[end]) {
                end += 1;
            }
        }
        let text = self.sql.get(self.pos..end).ok_or(LexError::Ambiguous)?;
        if text.chars().any(|c| !c.is_ascii() && c.is_whitespace()) {
            return Err(LexError::Ambiguous);
        }
        let kind = if self.bytes[self.pos].is_ascii_digit() { TokenKind::Number } else { TokenKind::Word };
        Ok(self.token(kind, end, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: MySqlMode = MySqlMode::DEFAULT;
    const NBE: MySqlMode = MySqlMode { no_backslash_escapes: true, ansi_quotes: false };

    fn normalized(sql: &str, mode: MySqlMode) -> Vec<String> {
        match split(sql, mode) {
            Ok(stmts) => stmts.into_iter().map(|s| s.normalized.trim_end().to_owned()).collect(),
            Err(e) => panic!("{sql:?}: {e:?}"),
        }
    }

    #[test]
    fn splits_and_normalises() {
        let cases: &[(&str, MySqlMode, &[&str])] = &[
            ("SELECT 1; SELECT 2", DEFAULT, &["SELECT 1", "SELECT 2"]),
            ("SELECT 1 # x; DROP\n; DELETE FROM t", DEFAULT, &["SELECT 1", "DELETE FROM t"]),
            ("SELECT 1 -- x; y\n", DEFAULT, &["SELECT 1"]),
            ("SELECT 1--1; DROP TABLE t", DEFAULT, &["SELECT 1--1", "DROP TABLE t"]),
            ("SELECT 1 /* ; */ ; /*! DROP TABLE t */", DEFAULT, &["SELECT 1", "DROP TABLE t"]),
            ("/*!50001 DELETE FROM t */", DEFAULT, &["DELETE FROM t"]),
            ("/*M!100101 DELETE FROM t*/", DEFAULT, &["DELETE FROM t"]),
            (r"SELECT 'a\'; DROP TABLE t; --'", DEFAULT, &[r"SELECT 'a\'; DROP TABLE t; --'"]),
            (r"SELECT 'a\'; DROP TABLE t; -- '", NBE, &[r"SELECT 'a\\'", "DROP TABLE t"]),
            ("SELECT 'it''s; x', \"a;b\", `c;d`", DEFAULT, &["SELECT 'it''s; x', \"a;b\", `c;d`"]),
            (";; ;", DEFAULT, &[]),
        ];
        for (sql, mode, want) in cases {
            assert_eq!(normalized(sql, *mode), *want, "{sql:?}");
        }
    }

    #[test]
    fn runs_bound_operator_chains() {
        let run = |sql: &str| split(sql, DEFAULT).map(|s| s[0].longest_run).unwrap_or_default();
        assert_eq!(run("SELECT 1+1+1"), 6);
        assert_eq!(run("SELECT a, b, c"), 2);
        assert_eq!(run("SELECT 1 + (2) + (3)"), 8);
        assert_eq!(run("INSERT INTO t VALUES (1, 2), (3, 4)"), 6);
    }

    #[test]
    fn ansi_quotes_make_identifiers() {
        let mode = MySqlMode { no_backslash_escapes: false, ansi_quotes: true };
        assert_eq!(normalized(r#"SELECT * FROM "a""b`c""#, mode), ["SELECT * FROM `a\"b``c`"]);
        assert_eq!(normalized(r#"SELECT "a\"; DROP TABLE t"#, mode), [r"SELECT `a\`", "DROP TABLE t"]);
    }

    #[test]
    fn refuses_what_it_is_unsure_of() {
        for sql in [
            "SELECT 'x",
            "SELECT `x",
            "SELECT /* x",
            "/*! SELECT 1",
            "/*! SELECT 1 # hidden */",
            "/*! SELECT 1 /* nested */ */",
            "SELECT 1\0",
            "SELECT\u{a0}1",
        ] {
            assert!(split(sql, DEFAULT).is_err(), "{sql:?}");
        }
    }
}
