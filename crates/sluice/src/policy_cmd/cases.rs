//! The cases file of `sluice policy test`: its format, parsing with errors
//! that name the case, and judging a decision against a case.
//!
//! Owns: [`Cases::parse`], [`PrincipalSpec`] (how a principal is written in
//! a case or on the command line) and [`Case::judge`].
//! Does not: classify or decide (the caller does, with sluice-sql and
//! sluice-policy), or print.
//!
//! ```toml
//! [defaults]                     # optional; any case may override each key
//! connection = "patients"
//! principal = { subject = "bot-1", kind = "agent", groups = ["analysts"] }
//! time = "2026-11-04T10:00:00Z"  # RFC 3339; default: now
//!
//! [[case]]
//! name = "analysts read patients"
//! sql = "SELECT * FROM public.patients"
//! expect = "allow"                           # allow | deny | hold
//! policies = ["analysts-read-patients"]      # optional: exactly these, any order
//!
//! [[case]]
//! name = "night-time write from outside"
//! principal = { subject = "nurse-7", kind = "human", groups = ["nurses"], issuer = "https://idp" }
//! connection = "emr"
//! sql = "UPDATE visits SET note = 'x' WHERE id = 1"
//! client_ip = "203.0.113.9"                  # optional: context.client_ip
//! time = "2026-11-04T23:30:00Z"
//! expect = "deny"
//! ```

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sluice_model::{Principal, PrincipalKind, Verdict};
use std::collections::HashSet;
use std::net::IpAddr;

/// A principal as a case (or `sluice policy explain`) writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSpec {
    /// The API key name or token `sub`.
    pub subject: String,
    #[serde(default = "default_kind")]
    pub kind: PrincipalKind,
    /// The groups the credential carries; `[policy.groups]` adds their parents.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `principal.issuer`: `api-key`, or an OIDC issuer URL.
    #[serde(default = "default_issuer")]
    pub issuer: String,
}

fn default_kind() -> PrincipalKind {
    PrincipalKind::Agent
}

pub fn default_issuer() -> String {
    "api-key".into()
}

impl PrincipalSpec {
    /// The principal the gateway would build for this credential: groups
    /// sorted and de-duplicated, as identity does.
    pub fn to_principal(&self) -> Result<Principal, String> {
        if self.subject.trim().is_empty() {
            return Err("the principal's subject must not be empty".into());
        }
        Ok(Principal::new(self.subject.clone(), self.kind, self.groups.clone(), self.issuer.clone(), None))
    }
}

/// Parses an RFC 3339 time, for a case's `time` and `--time`.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 time such as 2026-11-04T22:30:00Z: {e}"))
}

/// Keys a case may take from `[defaults]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    principal: Option<PrincipalSpec>,
    connection: Option<String>,
    client_ip: Option<IpAddr>,
    time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    case: Vec<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    principal: Option<PrincipalSpec>,
    connection: Option<String>,
    sql: String,
    client_ip: Option<IpAddr>,
    time: Option<String>,
    expect: Verdict,
    policies: Option<Vec<String>>,
}

/// One case, with its defaults applied.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub principal: Principal,
    pub connection: String,
    pub sql: String,
    pub client_ip: Option<IpAddr>,
    /// `None`: decide at the current time.
    pub time: Option<DateTime<Utc>>,
    pub expect: Verdict,
    /// When set, the decision must name exactly these policies (any order).
    pub policies: Option<Vec<String>>,
}

/// A parsed cases file.
#[derive(Debug)]
pub struct Cases {
    pub cases: Vec<Case>,
}

impl Cases {
    /// Parses the file's text. `known_connection` says whether a connection
    /// is configured, so a misspelt one is an error rather than a deny.
    /// Errors name the case (by `name`, or by position when it has none).
    pub fn parse(text: &str, known_connection: impl Fn(&str) -> bool) -> Result<Cases, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        let defaults = &raw.defaults;
        let default_time =
            defaults.time.as_deref().map(parse_time).transpose().map_err(|e| format!("[defaults] time: {e}"))?;
        if raw.case.is_empty() {
            return Err("no cases: add at least one [[case]] table".into());
        }
        let mut names = HashSet::new();
        let mut cases = Vec::with_capacity(raw.case.len());
        for (i, table) in raw.case.into_iter().enumerate() {
            let label = match table.get("name").and_then(|n| n.as_str()) {
                Some(name) => format!("case `{name}`"),
                None => format!("case #{}", i + 1),
            };
            let case =
                Case::resolve(table, defaults, default_time, &known_connection).map_err(|e| format!("{label}: {e}"))?;
            if !names.insert(case.name.clone()) {
                return Err(format!("{label}: another case has the same name"));
            }
            cases.push(case);
        }
        Ok(Cases { cases })
    }
}

impl Case {
    fn resolve(
        table: toml::Table,
        defaults: &Defaults,
        default_time: Option<DateTime<Utc>>,
        known_connection: &impl Fn(&str) -> bool,
    ) -> Result<Case, String> {
        let raw: RawCase = toml::Value::Table(table).try_into().map_err(|e| e.to_string().trim_end().to_owned())?;
        if raw.name.trim().is_empty() {
            return Err("`name` must not be empty".into());
        }
        let principal = raw
            .principal
            .as_ref()
            .or(defaults.principal.as_ref())
            .ok_or("no `principal`: set it in the case or in [defaults]")?
            .to_principal()?;
        let connection = raw
            .connection
            .or_else(|| defaults.connection.clone())
            .ok_or("no `connection`: set it in the case or in [defaults]")?;
        if !known_connection(&connection) {
            return Err(format!("connection `{connection}` is not configured in [[connections]]"));
        }
        let time = match raw.time {
            Some(text) => Some(parse_time(&text).map_err(|e| format!("time: {e}"))?),
            None => default_time,
        };
        Ok(Case {
            name: raw.name,
            principal,
            connection,
            sql: raw.sql,
            client_ip: raw.client_ip.or(defaults.client_ip),
            time,
            expect: raw.expect,
            policies: raw.policies,
        })
    }

    /// Why `got` (the verdict and the policies that made it) does not meet
    /// this case's expectation; `None` when it does.
    pub fn judge(&self, got: Verdict, policies: &[String]) -> Option<String> {
        if got != self.expect {
            return Some(format!("expected {}, got {}", verdict_name(self.expect), verdict_name(got)));
        }
        let want = self.policies.as_ref()?;
        let mut want_sorted: Vec<&str> = want.iter().map(String::as_str).collect();
        let mut got_sorted: Vec<&str> = policies.iter().map(String::as_str).collect();
        want_sorted.sort_unstable();
        got_sorted.sort_unstable();
        (want_sorted != got_sorted)
            .then(|| format!("expected policies [{}], got [{}]", want.join(", "), policies.join(", ")))
    }
}

pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
        Verdict::Hold => "hold",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[defaults]
connection = "patients"
principal = { subject = "bot-1", groups = ["b", "a", "a"] }

[[case]]
name = "reads"
sql = "select 1"
expect = "allow"
policies = ["p2", "p1"]

[[case]]
name = "other"
principal = { subject = "ann", kind = "human" }
connection = "scratch"
sql = "delete from t"
client_ip = "10.0.0.1"
time = "2026-11-04T23:30:00+01:00"
expect = "hold"
"#;

    fn parse(text: &str) -> Result<Cases, String> {
        Cases::parse(text, |c| c == "patients" || c == "scratch")
    }

    #[test]
    fn defaults_apply_and_cases_override_them() {
        let cases = parse(FILE).unwrap().cases;
        assert_eq!(cases[0].principal.groups, ["a", "b"]);
        assert_eq!(cases[0].principal.kind, PrincipalKind::Agent);
        assert_eq!(cases[0].principal.issuer, "api-key");
        assert_eq!((cases[0].connection.as_str(), cases[0].time), ("patients", None));
        assert_eq!(cases[1].principal.kind, PrincipalKind::Human);
        assert_eq!(cases[1].connection, "scratch");
        assert_eq!(cases[1].time.unwrap().to_rfc3339(), "2026-11-04T22:30:00+00:00");
        assert_eq!(cases[1].client_ip, Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn judge_compares_verdict_then_policies_in_any_order() {
        let cases = parse(FILE).unwrap().cases;
        let p = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(cases[0].judge(Verdict::Allow, &p(&["p1", "p2"])), None);
        assert_eq!(cases[0].judge(Verdict::Deny, &p(&["p1", "p2"])).unwrap(), "expected allow, got deny");
        assert!(cases[0].judge(Verdict::Allow, &p(&["p1"])).unwrap().contains("expected policies [p2, p1], got [p1]"));
        assert_eq!(cases[1].judge(Verdict::Hold, &p(&["anything"])), None);
    }

    /// Each row: a replacement applied to FILE, and words the error must contain.
    #[test]
    fn bad_files_name_the_case() {
        let rows: &[(&str, &str, &[&str])] = &[
            (
                "expect = \"hold\"",
                "expect = \"hold\"\nexpcted = \"deny\"",
                &["case `other`", "unknown field `expcted`"],
            ),
            ("expect = \"hold\"", "expect = \"maybe\"", &["case `other`", "unknown variant `maybe`"]),
            ("name = \"other\"\n", "", &["case #2", "missing field `name`"]),
            ("connection = \"scratch\"", "connection = \"scrach\"", &["case `other`", "`scrach` is not configured"]),
            ("time = \"2026-11-04T23:30:00+01:00\"", "time = \"tonight\"", &["case `other`", "time", "RFC 3339"]),
            ("kind = \"human\"", "kind = \"robot\"", &["case `other`", "unknown variant `robot`"]),
            ("subject = \"ann\"", "subject = \" \"", &["case `other`", "subject"]),
            ("name = \"other\"", "name = \"reads\"", &["case `reads`", "same name"]),
            ("[defaults]\nconnection = \"patients\"\n", "[defaults]\n", &["case `reads`", "no `connection`"]),
            ("[defaults]", "[defaults]\ncolour = 1", &["unknown field `colour`"]),
            ("[[case]]\nname = \"reads\"", "[[cases]]\nname = \"reads\"", &["unknown field `cases`"]),
        ];
        for (from, to, words) in rows {
            assert!(FILE.contains(from), "row {from} does not apply");
            let err = parse(&FILE.replacen(from, to, 1)).expect_err(to);
            for word in *words {
                assert!(err.contains(word), "error for `{to}` was `{err}`, missing `{word}`");
            }
        }
        assert!(parse("").unwrap_err().contains("no cases"));
    }
}
