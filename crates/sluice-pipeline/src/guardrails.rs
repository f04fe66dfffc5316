//! The built-in decide phase: allow, except for a small set of statements no
//! agent should run through a gateway.
//!
//! Owns: `Guardrails::decide`. This is the seam Cedar policy replaces; until
//! then it scans SQL words lexically (comments and literals skipped, so
//! `ALTER/**/SYSTEM` is still `alter system`), statement by statement.
//! Does not: parse SQL properly (that is `sluice-sql`'s job) — so it only
//! denies, and never uses what it sees to allow anything.

use sluice_model::{Action, Decision, Denial, Plan, Principal};

#[derive(Debug, Clone)]
pub struct Guardrails {
    /// Operator-configured statement prefixes, as lower-case word lists.
    denied_prefixes: Vec<(String, Vec<String>)>,
}

impl Guardrails {
    pub fn new(deny_statements: &[String]) -> Guardrails {
        let denied_prefixes = deny_statements
            .iter()
            .map(|text| (text.clone(), sql_words(text).into_iter().flatten().collect()))
            .collect();
        Guardrails { denied_prefixes }
    }

    pub fn decide(&self, _principal: &Principal, action: &Action) -> Decision {
        let Action::Sql(sql) = action;
        for words in sql_words(&sql.text) {
            if let Some(denial) = self.check_statement(&words) {
                return Decision::Deny(denial);
            }
        }
        Decision::Allow(Plan { policies: vec!["builtin.allow".into()], ..Plan::default() })
    }

    fn check_statement(&self, words: &[String]) -> Option<Denial> {
        let has_pair = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
        if has_pair("alter", "system") {
            return Some(denial("builtin.alter_system", "ALTER SYSTEM changes the server's configuration"));
        }
        if words.first().is_some_and(|w| w == "copy") && words.iter().any(|w| w == "program") {
            return Some(denial("builtin.copy_program", "COPY ... PROGRAM runs a shell command on the database host"));
        }
        for (text, prefix) in &self.denied_prefixes {
            if !prefix.is_empty() && words.starts_with(prefix) {
                return Some(denial(
                    "config.deny_statements",
                    &format!("statements starting with \"{text}\" are denied"),
                ));
            }
        }
        None
    }
}

fn denial(policy: &str, reason: &str) -> Denial {
    Denial::by_policy(policy, reason, Some("ask a database administrator to run it outside Sluice".into()))
}

/// Splits SQL into statements (on `;`) of lower-case bare words, skipping
/// comments (`--`, nested `/* */`), string literals (`'..'`, `E'..'`,
/// dollar-quoted) and quoted identifiers, which never count as keywords.
fn sql_words(sql: &str) -> Vec<Vec<String>> {
    let bytes = sql.as_bytes();
    let mut statements = vec![Vec::new()];
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b';' => {
                statements.push(Vec::new());
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = memchr_or_end(bytes, i, b'\n');
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' | b'"' => i = skip_quoted(bytes, i, c),
            b'$' => {
                // A dollar quote `$tag$ ... $tag$`; a lone `$1` is a parameter.
                let tag_end =
                    bytes[i + 1..].iter().position(|b| !(b.is_ascii_alphanumeric() || *b == b'_')).map(|p| i + 1 + p);
                match tag_end {
                    Some(end) if bytes[end] == b'$' && !bytes[i + 1..end].first().is_some_and(u8::is_ascii_digit) => {
                        let tag = &sql[i..=end];
                        i = match sql[end + 1..].find(tag) {
                            Some(p) => end + 1 + p + tag.len(),
                            None => bytes.len(),
                        };
                    }
                    _ => i += 1,
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$' || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                // `E'...'` and friends: the prefix is not a word.
                if i < bytes.len() && bytes[i] == b'\'' && i - start == 1 {
                    i = skip_quoted(bytes, i, b'\'');
                    continue;
                }
                if let Some(current) = statements.last_mut() {
                    current.push(sql[start..i].to_ascii_lowercase());
                }
            }
            _ => i += 1,
        }
    }
    statements.retain(|s| !s.is_empty());
    statements
}

fn memchr_or_end(bytes: &[u8], from: usize, needle: u8) -> usize {
    bytes[from..].iter().position(|b| *b == needle).map_or(bytes.len(), |p| from + p + 1)
}

/// Skips a quoted run starting at `start`; a doubled quote is an escaped one.
/// Backslash escapes count only in `E''` strings, as with PostgreSQL's default
/// `standard_conforming_strings = on`.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> usize {
    let escapes = quote == b'\'' && start > 0 && matches!(bytes[start - 1], b'e' | b'E');
    let mut i = start + 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::{PrincipalKind, SqlStatement, Verdict};

    fn verdict(sql: &str) -> Verdict {
        let guardrails = Guardrails::new(&["drop database".to_string()]);
        let principal = Principal {
            subject: "t".into(),
            kind: PrincipalKind::Agent,
            groups: vec![],
            issuer: "api-key".into(),
            token_id: None,
        };
        let action = Action::Sql(SqlStatement {
            text: sql.into(),
            param_count: 0,
            params_sha256: None,
            extended: false,
            classification: None,
            default_schema: None,
        });
        guardrails.decide(&principal, &action).verdict()
    }

    #[test]
    fn denies_the_guarded_statements_however_they_are_dressed() {
        for sql in [
            "ALTER SYSTEM SET work_mem = '1GB'",
            "alter/**/system set x = 1",
            "select 1; ALTER\n  SYSTEM RESET ALL",
            "/* hi /* nested */ */ alter system reset all",
            "-- comment\nalter system reset all",
            "COPY t TO PROGRAM 'rm -rf /'",
            "copy t from program 'curl x'",
            "DROP DATABASE test",
            "select $$;$$; drop   database test",
        ] {
            assert_eq!(verdict(sql), Verdict::Deny, "{sql}");
        }
    }

    #[test]
    fn allows_lookalikes_inside_literals_and_identifiers() {
        for sql in [
            "select 'alter system'",
            "select \"alter\" from system",
            "select $$ alter system $$",
            "select $tag$ copy x program $tag$",
            "select E'it\\'s; alter system'",
            "copy t to stdout",
            "select * from program",
            "drop table database_x",
            "select $1::text",
        ] {
            assert_eq!(verdict(sql), Verdict::Allow, "{sql}");
        }
    }

    #[test]
    fn splits_statements_and_skips_comments() {
        assert_eq!(
            sql_words("SELECT a -- x;\n; /* ; */ Insert INTO t"),
            vec![vec!["select".to_string(), "a".into()], vec!["insert".into(), "into".into(), "t".into()]]
        );
    }
}
