//! `[siem]`: the sinks the audit log is forwarded to (syslog, Splunk HEC,
//! NATS JetStream, OTLP logs over HTTP), and the checks on them.
//!
//! Owns: the section's types, the kind, transport and statement-option
//! names, and their validation (required keys per kind, keys that belong to
//! another kind refused, unique sink names, OTLP header names). Sending,
//! cursors and retries belong to `sluice-siem`, which resolves the HEC
//! token and the OTLP header values when it is built.

use crate::{InlineSecret, Invalid, Secret};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// `[siem]`. Absent: nothing is forwarded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Siem {
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
}

/// `[[siem.sinks]]`: one receiver of every audit record and signed
/// checkpoint, with its own durable cursor (kept under `name`).
///
/// The kind-specific keys are all optional here so that a missing or
/// misplaced one is refused naming its key (`siem.sinks[1].url`);
/// [`SinkConfig::target`] gives the validated form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Names the sink's cursor: renaming a sink starts it from the beginning.
    pub name: String,
    /// `syslog`, `hec`, `nats` or `otlp`.
    pub kind: String,
    /// How much of a request's statement text leaves Sluice: `full`
    /// (default), `fingerprint` (the classifier's fingerprint: a hash, the
    /// same for statements that differ only in constants) or `none`.
    #[serde(default = "default_statement")]
    pub statement: String,
    /// Most events sent per round trip (default 100).
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// syslog: `host:port` of the collector.
    pub address: Option<String>,
    /// syslog: `udp`, `tcp` (octet-counted, RFC 6587; default) or `tls` (RFC 5425).
    pub transport: Option<String>,
    /// syslog `tls`, hec, otlp: PEM certificates the server's chain must
    /// lead to (instead of the system's roots).
    pub ca_file: Option<PathBuf>,
    /// syslog `tls`: the name the server's certificate must carry; default:
    /// the host of `address`.
    pub server_name: Option<String>,
    /// hec: the collector's base URL (`/services/collector/event` is appended);
    /// nats: the server URL (`nats://host:4222`); otlp: the collector's
    /// logs URL, used as it is (`http://host:4318/v1/logs`).
    pub url: Option<String>,
    /// hec: environment variable holding the HEC token.
    pub token_env: Option<String>,
    /// hec: the token itself. Exactly one of `token_env` and `token`.
    pub token: Option<InlineSecret>,
    /// nats: the JetStream stream, created (subjects `<subject_prefix>.>`)
    /// when it does not exist.
    pub stream: Option<String>,
    /// nats: events go to `<subject_prefix>.<event type>`.
    pub subject_prefix: Option<String>,
    /// otlp: headers sent with every request, written in the file
    /// (`{ "X-Scope-OrgID" = "clinic" }`). Values never show in `Debug`.
    pub headers: Option<BTreeMap<String, InlineSecret>>,
    /// otlp: headers whose values are read from environment variables when
    /// the sink starts, like hec's `token_env`
    /// (`{ Authorization = "SLUICE_OTLP_AUTH" }`). A header is named in
    /// `headers` or here, not both.
    pub headers_env: Option<BTreeMap<String, String>>,
}

fn default_statement() -> String {
    StatementOption::Full.as_str().into()
}

fn default_batch() -> u32 {
    100
}

/// What a sink is sent to, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    Syslog {
        address: String,
        transport: SyslogTransport,
        ca_file: Option<PathBuf>,
        server_name: Option<String>,
    },
    /// The token is read by [`SinkConfig::hec_token`], when the sink starts.
    Hec {
        url: String,
        ca_file: Option<PathBuf>,
    },
    Nats {
        url: String,
        stream: String,
        subject_prefix: String,
    },
    /// The header values are read by [`SinkConfig::otlp_headers`], when the
    /// sink starts.
    Otlp {
        url: String,
        ca_file: Option<PathBuf>,
    },
}

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One datagram per message (RFC 5426); no acknowledgement.
    Udp,
    /// Octet-counted frames over TCP (RFC 6587).
    Tcp,
    /// Octet-counted frames over TLS (RFC 5425).
    Tls,
}

/// How much statement text a sink gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementOption {
    Full,
    Fingerprint,
    None,
}

impl StatementOption {
    pub fn as_str(self) -> &'static str {
        match self {
            StatementOption::Full => "full",
            StatementOption::Fingerprint => "fingerprint",
            StatementOption::None => "none",
        }
    }

    fn parse(text: &str) -> Result<StatementOption, String> {
        match text {
            "full" => Ok(StatementOption::Full),
            "fingerprint" => Ok(StatementOption::Fingerprint),
            "none" => Ok(StatementOption::None),
            other => Err(format!("unknown statement option `{other}` (expected full, fingerprint or none)")),
        }
    }
}

/// The keys only some kinds take: (key, kinds).
const KIND_KEYS: [(&str, &str); 11] = [
    ("address", "syslog"),
    ("transport", "syslog"),
    ("server_name", "syslog"),
    ("ca_file", "syslog, hec or otlp"),
    ("url", "hec, nats or otlp"),
    ("token_env", "hec"),
    ("token", "hec"),
    ("stream", "nats"),
    ("subject_prefix", "nats"),
    ("headers", "otlp"),
    ("headers_env", "otlp"),
];

/// The sink kinds, as `kind` names them.
const KINDS: [&str; 4] = ["syslog", "hec", "nats", "otlp"];

impl SinkConfig {
    /// The statement option; `Err` names what is wrong.
    pub fn statement(&self) -> Result<StatementOption, String> {
        StatementOption::parse(&self.statement)
    }

    /// Where the sink sends, or `(key, message)` for the first wrong key.
    pub fn target(&self) -> Result<SinkTarget, (&'static str, String)> {
        let set: [(&'static str, bool); 11] = [
            ("address", self.address.is_some()),
            ("transport", self.transport.is_some()),
            ("server_name", self.server_name.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("url", self.url.is_some()),
            ("token_env", self.token_env.is_some()),
            ("token", self.token.is_some()),
            ("stream", self.stream.is_some()),
            ("subject_prefix", self.subject_prefix.is_some()),
            ("headers", self.headers.is_some()),
            ("headers_env", self.headers_env.is_some()),
        ];
        let kind = self.kind.as_str();
        if !KINDS.contains(&kind) {
            return Err(("kind", format!("unknown sink kind `{kind}` (expected syslog, hec, nats or otlp)")));
        }
        for ((key, present), (_, kinds)) in set.iter().zip(KIND_KEYS) {
            if *present && !kinds.split([',', ' ']).any(|k| k == kind) {
                return Err((key, format!("is not a key of a `{kind}` sink (only {kinds})")));
            }
        }
        let required = |key: &'static str, value: &Option<String>| match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            Some(_) => Err((key, "must not be empty".to_string())),
            None => Err((key, format!("is required for a `{kind}` sink"))),
        };
        match kind {
            "syslog" => {
                let address = required("address", &self.address)?;
                check_host_port(&address).map_err(|m| ("address", m))?;
                let transport = match self.transport.as_deref().unwrap_or("tcp") {
                    "udp" => SyslogTransport::Udp,
                    "tcp" => SyslogTransport::Tcp,
                    "tls" => SyslogTransport::Tls,
                    other => {
                        return Err(("transport", format!("unknown transport `{other}` (expected udp, tcp or tls)")));
                    }
                };
                if transport != SyslogTransport::Tls {
                    if self.ca_file.is_some() {
                        return Err(("ca_file", "only with transport = \"tls\"".into()));
                    }
                    if self.server_name.is_some() {
                        return Err(("server_name", "only with transport = \"tls\"".into()));
                    }
                }
                Ok(SinkTarget::Syslog {
                    address,
                    transport,
                    ca_file: self.ca_file.clone(),
                    server_name: self.server_name.clone(),
                })
            }
            "hec" => {
                let url = required("url", &self.url)?;
                if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(char::is_whitespace) {
                    return Err(("url", format!("`{url}` is not an http:// or https:// URL")));
                }
                match (&self.token_env, &self.token) {
                    (Some(_), Some(_)) => return Err(("token", "set token_env or token, not both".into())),
                    (Some(var), None) if var.trim().is_empty() => {
                        return Err(("token_env", "must name an environment variable".into()));
                    }
                    (None, Some(token)) if token.expose().is_empty() => {
                        return Err(("token", "must not be empty".into()));
                    }
                    (None, None) => return Err(("token_env", "a hec sink needs token_env or token".into())),
                    _ => {}
                }
                Ok(SinkTarget::Hec { url: url.trim_end_matches('/').to_string(), ca_file: self.ca_file.clone() })
            }
            "otlp" => {
                let url = required("url", &self.url)?;
                crate::alerts::check_url(&url).map_err(|m| ("url", m))?;
                let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
                let path = after_scheme.find(['/', '?', '#']).map_or("", |at| &after_scheme[at..]);
                if path.split(['?', '#']).next().unwrap_or_default().trim_matches('/').is_empty() {
                    return Err((
                        "url",
                        format!("`{url}` has no path; OTLP/HTTP collectors take logs at /v1/logs (`{url}/v1/logs`)"),
                    ));
                }
                self.check_headers()?;
                Ok(SinkTarget::Otlp { url, ca_file: self.ca_file.clone() })
            }
            _ => {
                let url = required("url", &self.url)?;
                if !url.starts_with("nats://") && !url.starts_with("tls://") {
                    return Err(("url", format!("`{url}` is not a nats:// or tls:// URL")));
                }
                let stream = required("stream", &self.stream)?;
                if !stream.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(("stream", format!("`{stream}` may only hold letters, digits, `_` and `-`")));
                }
                let subject_prefix = required("subject_prefix", &self.subject_prefix)?;
                let tokens_ok = subject_prefix
                    .split('.')
                    .all(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic() && c != '*' && c != '>'));
                if !tokens_ok {
                    return Err((
                        "subject_prefix",
                        format!("`{subject_prefix}` is not a NATS subject (dot-separated, no wildcards or spaces)"),
                    ));
                }
                Ok(SinkTarget::Nats { url, stream, subject_prefix })
            }
        }
    }

    /// The OTLP headers, resolved: `headers` as written, then `headers_env`
    /// read from the environment.
    pub fn otlp_headers(&self) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> =
            self.headers.iter().flatten().map(|(name, value)| (name.clone(), value.expose().to_string())).collect();
        for (name, var) in self.headers_env.iter().flatten() {
            let value = Secret::Env(var.clone()).resolve().map_err(|e| format!("headers_env.{name}: {e}"))?;
            out.push((name.clone(), value));
        }
        Ok(out)
    }

    /// Every OTLP header name is an HTTP token, set once (names ignore
    /// case) and not `Content-Type` (Sluice sends JSON); inline values are
    /// non-empty without control characters, `headers_env` values name a
    /// variable.
    fn check_headers(&self) -> Result<(), (&'static str, String)> {
        let inline = self.headers.iter().flatten().map(|(name, value)| ("headers", name, value.expose()));
        let named = self.headers_env.iter().flatten().map(|(name, var)| ("headers_env", name, var.as_str()));
        let mut seen = HashSet::new();
        for (key, name, value) in inline.chain(named) {
            let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || !name.chars().all(token_char) {
                return Err((key, format!("`{name}` is not an HTTP header name")));
            }
            if name.eq_ignore_ascii_case("content-type") {
                return Err((key, "Content-Type is set by Sluice (application/json)".into()));
            }
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err((
                    key,
                    format!("header `{name}` is set twice (in headers and headers_env, or in two cases)"),
                ));
            }
            if value.trim().is_empty() {
                let what = if key == "headers" { "a value" } else { "an environment variable" };
                return Err((key, format!("header `{name}` needs {what}")));
            }
            if key == "headers" && value.chars().any(|c| c.is_control() && c != '\t') {
                return Err((key, format!("the value of header `{name}` holds a control character")));
            }
        }
        Ok(())
    }

    /// The HEC token, resolved: from `token` when written in the file, else
    /// from `token_env`.
    pub fn hec_token(&self) -> Result<String, String> {
        match (&self.token, &self.token_env) {
            (Some(token), _) => Ok(token.expose().to_string()),
            (None, Some(var)) => Secret::Env(var.clone()).resolve(),
            (None, None) => Err("no token_env or token".into()),
        }
    }
}

fn check_host_port(address: &str) -> Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => Ok(()),
        _ => Err(format!("`{address}` is not host:port")),
    }
}

pub(crate) fn validate(siem: &Siem) -> Result<(), Invalid> {
    let mut names = HashSet::new();
    for (i, sink) in siem.sinks.iter().enumerate() {
        let at = |field: &str, message: String| Invalid { key: format!("siem.sinks[{i}].{field}"), message };
        let name_ok = !sink.name.is_empty()
            && sink.name.len() <= 64
            && sink.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !name_ok {
            return Err(at("name", "must be 1-64 letters, digits, `_`, `-` or `.`".into()));
        }
        if !names.insert(sink.name.as_str()) {
            return Err(at("name", format!("sink `{}` is defined twice", sink.name)));
        }
        sink.statement().map_err(|m| at("statement", m))?;
        if sink.batch == 0 || sink.batch > 10_000 {
            return Err(at("batch", "must be from 1 to 10000".into()));
        }
        sink.target().map_err(|(key, m)| at(key, m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{SinkTarget, StatementOption, SyslogTransport};
    use crate::{Config, LoadError};
    use std::path::Path;

    const BASE: &str = "[listeners]\npostgres = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite://x.db\"\n";

    fn load(siem: &str) -> Result<Config, LoadError> {
        Config::from_toml(&format!("{BASE}{siem}"), Path::new("/etc/sluice"))
    }

    fn sink(body: &str) -> String {
        format!("[[siem.sinks]]\n{body}")
    }

    fn refused(siem: &str, key: &str, words: &str) {
        match load(siem) {
            Err(LoadError::Invalid(invalid)) => {
                assert_eq!(invalid.key, key, "{siem}: {}", invalid.message);
                assert!(invalid.message.contains(words), "{siem}: {}", invalid.message);
            }
            other => panic!("{siem}: expected a refusal naming {key}, got {other:?}"),
        }
    }

    #[test]
    fn absent_section_means_no_sinks() {
        assert!(load("").unwrap().siem.sinks.is_empty());
        assert!(load("[siem]\n").unwrap().siem.sinks.is_empty());
    }

    #[test]
    fn every_kind_loads_with_defaults_and_anchored_ca_file() {
        let config = load(
            r#"
[[siem.sinks]]
name = "rsyslog"
kind = "syslog"
address = "logs.example:6514"
transport = "tls"
ca_file = "certs/ca.pem"
[[siem.sinks]]
name = "udp"
kind = "syslog"
address = "127.0.0.1:514"
transport = "udp"
statement = "none"
[[siem.sinks]]
name = "splunk"
kind = "hec"
url = "https://splunk.example:8088/"
token_env = "HEC_TOKEN"
statement = "fingerprint"
batch = 500
[[siem.sinks]]
name = "bus"
kind = "nats"
url = "nats://127.0.0.1:4222"
stream = "SLUICE_AUDIT"
subject_prefix = "sluice.audit"
"#,
        )
        .unwrap();
        let sinks = &config.siem.sinks;
        assert_eq!(
            sinks[0].target().unwrap(),
            SinkTarget::Syslog {
                address: "logs.example:6514".into(),
                transport: SyslogTransport::Tls,
                ca_file: Some("/etc/sluice/certs/ca.pem".into()),
                server_name: None,
            }
        );
        assert_eq!(sinks[0].statement(), Ok(StatementOption::Full));
        assert_eq!(sinks[0].batch, 100);
        assert_eq!(sinks[1].statement(), Ok(StatementOption::None));
        assert_eq!(
            sinks[2].target().unwrap(),
            SinkTarget::Hec { url: "https://splunk.example:8088".into(), ca_file: None }
        );
        assert_eq!(sinks[2].token_env.as_deref(), Some("HEC_TOKEN"));
        assert_eq!(sinks[2].statement(), Ok(StatementOption::Fingerprint));
        assert_eq!(sinks[2].batch, 500);
        assert_eq!(
            sinks[3].target().unwrap(),
            SinkTarget::Nats {
                url: "nats://127.0.0.1:4222".into(),
                stream: "SLUICE_AUDIT".into(),
                subject_prefix: "sluice.audit".into()
            }
        );
        let tcp = load(&sink("name = \"t\"\nkind = \"syslog\"\naddress = \"h:601\"\n")).unwrap();
        assert!(matches!(tcp.siem.sinks[0].target(), Ok(SinkTarget::Syslog { transport: SyslogTransport::Tcp, .. })));
    }

    #[test]
    fn inline_token_resolves_and_is_not_printed() {
        let config =
            load(&sink("name = \"s\"\nkind = \"hec\"\nurl = \"http://127.0.0.1:1\"\ntoken = \"hec-secret-1\"\n"))
                .unwrap();
        assert_eq!(config.siem.sinks[0].hec_token().unwrap(), "hec-secret-1");
        assert!(!format!("{config:?}").contains("hec-secret-1"));
    }

    #[test]
    fn wrong_sinks_are_refused_naming_the_key() {
        let syslog = "name = \"s\"\nkind = \"syslog\"\naddress = \"127.0.0.1:514\"\n";
        refused(&sink("name = \"s\"\nkind = \"kafka\"\n"), "siem.sinks[0].kind", "syslog, hec, nats or otlp");
        refused(&sink("name = \"s\"\nkind = \"syslog\"\n"), "siem.sinks[0].address", "required");
        refused(&sink("name = \"s\"\nkind = \"syslog\"\naddress = \"nohost\"\n"), "siem.sinks[0].address", "host:port");
        refused(&sink(&format!("{syslog}transport = \"sctp\"\n")), "siem.sinks[0].transport", "`sctp`");
        refused(&sink(&format!("{syslog}ca_file = \"ca.pem\"\n")), "siem.sinks[0].ca_file", "tls");
        refused(&sink(&format!("{syslog}url = \"http://x\"\n")), "siem.sinks[0].url", "not a key of a `syslog`");
        refused(&sink(&format!("{syslog}statement = \"masked\"\n")), "siem.sinks[0].statement", "`masked`");
        refused(&sink(&format!("{syslog}batch = 0\n")), "siem.sinks[0].batch", "1 to 10000");
        refused(&format!("{}{}", sink(syslog), sink(syslog)), "siem.sinks[1].name", "twice");
        refused(&sink("name = \"a b\"\nkind = \"syslog\"\naddress = \"h:1\"\n"), "siem.sinks[0].name", "letters");
        refused(&sink("name = \"h\"\nkind = \"hec\"\nurl = \"http://h\"\n"), "siem.sinks[0].token_env", "token");
        refused(
            &sink("name = \"h\"\nkind = \"hec\"\nurl = \"http://h\"\ntoken = \"a\"\ntoken_env = \"B\"\n"),
            "siem.sinks[0].token",
            "not both",
        );
        refused(&sink("name = \"h\"\nkind = \"hec\"\nurl = \"h:80\"\ntoken = \"a\"\n"), "siem.sinks[0].url", "http");
        refused(&sink("name = \"n\"\nkind = \"nats\"\nurl = \"nats://h:4222\"\n"), "siem.sinks[0].stream", "required");
        refused(
            &sink("name = \"n\"\nkind = \"nats\"\nurl = \"nats://h:4222\"\nstream = \"S\"\nsubject_prefix = \"a.>\"\n"),
            "siem.sinks[0].subject_prefix",
            "wildcards",
        );
        refused(
            &sink(
                "name = \"n\"\nkind = \"nats\"\nurl = \"nats://h\"\nstream = \"S\"\nsubject_prefix = \"a\"\ntoken = \"t\"\n",
            ),
            "siem.sinks[0].token",
            "only hec",
        );
    }

    #[test]
    fn otlp_sink_loads_with_inline_and_environment_headers() {
        let config = load(&sink(
            r#"name = "otel"
kind = "otlp"
url = "https://collector.example:4318/v1/logs"
ca_file = "certs/otel-ca.pem"
headers = { "X-Scope-OrgID" = "clinic", "api-key" = "inline-secret-1" }
headers_env = { "X-Test-Path" = "PATH" }
batch = 200
"#,
        ))
        .unwrap();
        let otel = &config.siem.sinks[0];
        assert_eq!(
            otel.target().unwrap(),
            SinkTarget::Otlp {
                url: "https://collector.example:4318/v1/logs".into(),
                ca_file: Some("/etc/sluice/certs/otel-ca.pem".into()),
            }
        );
        assert_eq!(otel.batch, 200);
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            otel.otlp_headers().unwrap(),
            [("X-Scope-OrgID", "clinic"), ("api-key", "inline-secret-1"), ("X-Test-Path", path.as_str())]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(!format!("{config:?}").contains("inline-secret-1"));

        let unset = load(&sink(
            "name = \"o\"\nkind = \"otlp\"\nurl = \"http://127.0.0.1:4318/v1/logs\"\n\
             headers_env = { Authorization = \"SLUICE_TEST_UNSET_OTLP_VARIABLE\" }\n",
        ))
        .unwrap();
        let err = unset.siem.sinks[0].otlp_headers().unwrap_err();
        assert!(err.contains("headers_env.Authorization") && err.contains("SLUICE_TEST_UNSET_OTLP_VARIABLE"), "{err}");
        let bare = load(&sink("name = \"o\"\nkind = \"otlp\"\nurl = \"http://[::1]:4318/v1/logs\"\n")).unwrap();
        assert_eq!(bare.siem.sinks[0].otlp_headers().unwrap(), []);
    }

    #[test]
    fn wrong_otlp_sinks_are_refused_naming_the_key() {
        let otlp = |rest: &str| sink(&format!("name = \"o\"\nkind = \"otlp\"\n{rest}"));
        let url = "url = \"http://127.0.0.1:4318/v1/logs\"\n";
        refused(&otlp(""), "siem.sinks[0].url", "required");
        refused(&otlp("url = \"grpc://127.0.0.1:4317\"\n"), "siem.sinks[0].url", "not an http:// or https://");
        refused(&otlp("url = \"127.0.0.1:4318/v1/logs\"\n"), "siem.sinks[0].url", "not an http:// or https://");
        refused(&otlp("url = \"http:///v1/logs\"\n"), "siem.sinks[0].url", "no host");
        refused(&otlp("url = \"http://h:99999/v1/logs\"\n"), "siem.sinks[0].url", "port");
        refused(&otlp("url = \"http://h/v1 logs\"\n"), "siem.sinks[0].url", "spaces");
        refused(&otlp("url = \"http://h:4318\"\n"), "siem.sinks[0].url", "/v1/logs");
        refused(&otlp("url = \"http://h:4318/?x=1\"\n"), "siem.sinks[0].url", "no path");
        refused(&otlp(&format!("{url}headers = {{ \"Bad Name\" = \"v\" }}\n")), "siem.sinks[0].headers", "header name");
        refused(
            &otlp(&format!("{url}headers_env = {{ \"content-type\" = \"V\" }}\n")),
            "siem.sinks[0].headers_env",
            "Content-Type",
        );
        refused(
            &otlp(&format!("{url}headers = {{ Authorization = \"a\" }}\nheaders_env = {{ authorization = \"B\" }}\n")),
            "siem.sinks[0].headers_env",
            "twice",
        );
        refused(
            &otlp(&format!("{url}headers_env = {{ Authorization = \" \" }}\n")),
            "siem.sinks[0].headers_env",
            "variable",
        );
        refused(&otlp(&format!("{url}headers = {{ A = \"\" }}\n")), "siem.sinks[0].headers", "needs a value");
        refused(&otlp(&format!("{url}headers = {{ A = \"x\\ny\" }}\n")), "siem.sinks[0].headers", "control");
        refused(&otlp(&format!("{url}token = \"t\"\n")), "siem.sinks[0].token", "only hec");
        refused(&otlp(&format!("{url}stream = \"S\"\n")), "siem.sinks[0].stream", "only nats");
        refused(
            &sink("name = \"h\"\nkind = \"hec\"\nurl = \"http://h\"\ntoken = \"t\"\nheaders = { A = \"b\" }\n"),
            "siem.sinks[0].headers",
            "only otlp",
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = load(&sink("name = \"s\"\nkind = \"syslog\"\naddress = \"h:1\"\nfacility = 4\n")).unwrap_err();
        assert!(err.to_string().contains("unknown field `facility`"), "{err}");
        let err = load("[siem]\nsink = []\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `sink`"), "{err}");
    }
}
