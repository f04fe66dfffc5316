//! How the session reads string literals, and the parser options that follow.
//!
//! Owns: [`PgStringMode`] and its mapping to `pg_query` parser options.
//! Does not own: tracking the setting per session (the adapter does that, from
//! the server's `ParameterStatus` messages).

use pg_query::ParserOptions;

/// How the session reads string literals (tracked per session by the adapter).
///
/// With `standard_conforming_strings = off`, a backslash in an ordinary
/// `'...'` literal is an escape, so the same bytes can split into different
/// statements. Sluice parses with the grammar in the same mode as the server
/// (`pg_query` exposes the scanner flag), so the statements it classifies are
/// the statements the server will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PgStringMode {
    /// The session's `standard_conforming_strings` (on by default since
    /// PostgreSQL 9.1).
    pub standard_conforming_strings: bool,
}

impl PgStringMode {
    /// `standard_conforming_strings = on`: the default.
    pub const STANDARD: PgStringMode = PgStringMode { standard_conforming_strings: true };
    /// `standard_conforming_strings = off`: backslashes escape in `'...'`.
    pub const BACKSLASH_ESCAPES: PgStringMode = PgStringMode { standard_conforming_strings: false };

    /// Whether the mode can change how `sql` is read. Only a backslash
    /// inside an ordinary `'...'` literal reads differently, so a text
    /// without any backslash gives the same statements in both modes (except
    /// that `U&'...'` literals are refused when the setting is off, as the
    /// server refuses them). An adapter that must classify before it knows
    /// the mode (a message pipelined behind a `SET`) can use this: when it
    /// is false, either mode gives the right answer; when it is true,
    /// classify in both and act on the more dangerous result.
    pub fn affects(sql: &str) -> bool {
        sql.contains('\\')
    }

    /// The parser options that make `pg_query`'s scanner read literals as the
    /// server does in this mode.
    pub(crate) fn parser_options(self) -> ParserOptions {
        if self.standard_conforming_strings {
            ParserOptions::DEFAULT
        } else {
            ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS
        }
    }
}

impl Default for PgStringMode {
    fn default() -> Self {
        PgStringMode::STANDARD
    }
}
