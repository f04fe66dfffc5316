//! What the two HTTP sinks (Splunk HEC, OTLP) share: the client, the POST,
//! and what the answer means.
//!
//! Owns: [`Endpoint`], what a sink posts to: the reqwest client (10 s per
//! request, no redirects, the sink's `ca_file` as its only roots when
//! given), the URL and the sink's fixed headers; and the reading of an
//! answer: any 2xx is received; 429, 5xx and a request that
//! got no answer are [`SinkError::Unavailable`]; anything else (a 4xx, a
//! redirect) is [`SinkError::Rejected`], a problem with the sink's config
//! that waiting alone does not fix.
//! Does not: build payloads or retry (the runner retries every failure,
//! a rejection included, so no record is ever skipped).

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::SinkError;

/// How long one POST may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Most characters of an error answer's body quoted in the error.
const QUOTED: usize = 200;

/// Where one HTTP sink posts: its URL, the headers every request carries
/// and its client. Debug shows the URL only (headers may be credentials).
pub(crate) struct Endpoint {
    url: reqwest::Url,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("url", &self.url.as_str()).finish_non_exhaustive()
    }
}

impl Endpoint {
    /// `url` with `headers` (see [`headers`]); an HTTPS server is checked
    /// against `ca_file` when given.
    pub(crate) fn new<'a>(
        url: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        ca_file: Option<&Path>,
    ) -> Result<Endpoint, SinkError> {
        Ok(Endpoint {
            url: url.parse().map_err(|e| SinkError::Setup(format!("url `{url}`: {e}")))?,
            headers: self::headers(headers)?,
            client: client(ca_file)?,
        })
    }

    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// POSTs `body`; the answer's body on a 2xx.
    pub(crate) async fn post(&self, body: String) -> Result<String, SinkError> {
        post(&self.client, &self.url, &self.headers, body).await
    }
}

/// The client for one sink; an HTTPS server is checked against `ca_file`
/// when given, else against the system's roots.
fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, SinkError> {
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| SinkError::Setup(format!("cannot read ca_file {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| SinkError::Setup(format!("ca_file {}: {e}", path.display())))?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| SinkError::Setup(format!("HTTP client: {e}")))
}

/// The headers every POST of a sink carries: `headers` and
/// `Content-Type: application/json` (both sinks send JSON). A name or value
/// HTTP cannot carry fails here, at startup; the error names the header,
/// never its value (it may be a credential).
fn headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<HeaderMap, SinkError> {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        let key = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SinkError::Setup(format!("`{name}` is not an HTTP header name")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| SinkError::Setup(format!("the value of header `{name}` is not valid in HTTP")))?;
        value.set_sensitive(true);
        map.insert(key, value);
    }
    Ok(map)
}

/// POSTs `body` to `endpoint`; the answer's body on a 2xx.
async fn post(
    client: &reqwest::Client,
    endpoint: &reqwest::Url,
    headers: &HeaderMap,
    body: String,
) -> Result<String, SinkError> {
    let response = client
        .post(endpoint.clone())
        .headers(headers.clone())
        .body(body)
        .send()
        .await
        .map_err(|e| SinkError::Unavailable(format!("{endpoint}: {}", error_text(e))))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(text);
    }
    let text: String = text.chars().take(QUOTED).collect();
    Err(answer_error(endpoint, status, &text))
}

/// The error for a non-2xx answer.
fn answer_error(endpoint: &reqwest::Url, status: StatusCode, text: &str) -> SinkError {
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        SinkError::Unavailable(format!("{endpoint}: HTTP {status}: {text}"))
    } else {
        SinkError::Rejected(format!(
            "{endpoint}: HTTP {status}: {text} (the receiver refused the batch itself: check the sink's url, \
             headers or token; retried all the same, so nothing is skipped)"
        ))
    }
}

/// A reqwest error's text and its causes, without the URL (the caller
/// adds it once).
fn error_text(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{answer_error, headers};
    use crate::SinkError;
    use reqwest::StatusCode;

    #[test]
    fn busy_and_broken_receivers_are_unavailable_refusals_rejected() {
        let url: reqwest::Url = "http://127.0.0.1:4318/v1/logs".parse().unwrap();
        let cases = [(429, true), (500, true), (502, true), (503, true), (504, true), (400, false), (401, false)];
        for (code, unavailable) in cases.into_iter().chain([(404, false), (413, false), (301, false)]) {
            let error = answer_error(&url, StatusCode::from_u16(code).unwrap(), "why");
            assert_eq!(matches!(error, SinkError::Unavailable(_)), unavailable, "{code}: {error}");
            assert_eq!(matches!(error, SinkError::Rejected(_)), !unavailable, "{code}: {error}");
            let text = error.to_string();
            assert!(text.starts_with(&format!("http://127.0.0.1:4318/v1/logs: HTTP {code} ")), "{text}");
            assert!(text.contains("why"), "{text}");
        }
    }

    #[test]
    fn headers_are_checked_at_startup_without_showing_values() {
        let map = headers([("Authorization", "Bearer t0ken"), ("X-Scope-OrgID", "clinic")]).unwrap();
        assert_eq!(map["content-type"], "application/json");
        assert_eq!(map["authorization"], "Bearer t0ken");
        assert!(map["authorization"].is_sensitive());
        assert_eq!(map["x-scope-orgid"], "clinic");
        let bad_name = headers([("Bad Name", "v")]).unwrap_err().to_string();
        assert!(bad_name.contains("`Bad Name`"), "{bad_name}");
        let bad_value = headers([("Authorization", "Bearer a\nb")]).unwrap_err().to_string();
        assert!(bad_value.contains("`Authorization`") && !bad_value.contains("Bearer"), "{bad_value}");
    }
}
