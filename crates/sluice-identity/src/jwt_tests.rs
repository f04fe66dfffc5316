//! Table tests for `jwt`: shape, header allow-list, signatures, claims.
//!
//! Owns: the pure checks, exercised with an Ed25519 key from RFC 8037.
//! Does not: talk to a provider; `tests/oidc.rs` does that against a real one.

use super::*;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

/// RFC 8037 appendix A.1: the Ed25519 test key (private `d`, public `x`).
const ED_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn raw_token(header: Value, claims: Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(&header), b64(&claims))
}

fn ed_signing_key() -> EncodingKey {
    // PKCS#8 v1 wrapping of a raw Ed25519 seed (RFC 8410).
    let mut der = STANDARD.decode("MC4CAQAwBQYDK2VwBCIEIA==").unwrap_or_default();
    der.extend(URL_SAFE_NO_PAD.decode(ED_D).unwrap_or_default());
    EncodingKey::from_ed_der(&der)
}

fn ed_decoding_key() -> DecodingKey {
    match DecodingKey::from_ed_components(ED_X) {
        Ok(key) => key,
        Err(e) => panic!("{e}"),
    }
}

fn sign_ed(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ed".into());
    match jsonwebtoken::encode(&header, claims, &ed_signing_key()) {
        Ok(token) => token,
        Err(e) => panic!("signing failed: {e}"),
    }
}

#[test]
fn shape_table() {
    let cases: &[(&str, bool)] = &[
        ("eyJh.eyJz.c2ln", true),
        ("a.b.c", true),
        ("a.b.", true), // alg=none shape: refused later as a token
        ("", false),
        ("a.b", false),
        ("a.b.c.d", false),
        (".b.c", false),
        ("a..c", false),
        ("a.b.c=", false),
        ("a+b.c.d", false),
        ("my api key", false),
        ("sk_live_0123456789abcdef", false),
        ("ä.b.c", false),
    ];
    for (credential, want) in cases {
        assert_eq!(looks_like_jwt(credential), *want, "{credential:?}");
    }
}

#[test]
fn header_table() {
    let claims = json!({"iss": "https://idp"});
    let not_allowed = |alg: &str| Err(IdentityError::AlgorithmNotAllowed(format!("`{alg}`")));
    type Expected<'a> = Result<(TokenAlgorithm, Option<&'a str>), IdentityError>;
    let cases: Vec<(String, Expected)> = vec![
        (raw_token(json!({"alg": "RS256", "kid": "k1"}), claims.clone(), "s"), Ok((TokenAlgorithm::RS256, Some("k1")))),
        (raw_token(json!({"alg": "EdDSA"}), claims.clone(), "s"), Ok((TokenAlgorithm::EdDSA, None))),
        (raw_token(json!({"alg": "none"}), claims.clone(), ""), not_allowed("none")),
        (raw_token(json!({"alg": "None"}), claims.clone(), ""), not_allowed("None")),
        (raw_token(json!({"alg": "HS256", "kid": "k1"}), claims.clone(), "s"), not_allowed("HS256")),
        (raw_token(json!({"alg": "HS512"}), claims.clone(), "s"), not_allowed("HS512")),
        (raw_token(json!({"alg": "ES512"}), claims.clone(), "s"), not_allowed("ES512")),
        (raw_token(json!({"alg": "Ed25519"}), claims.clone(), "s"), not_allowed("Ed25519")),
        (raw_token(json!({"alg": "rs256"}), claims.clone(), "s"), not_allowed("rs256")),
        (raw_token(json!({"alg": ""}), claims.clone(), "s"), not_allowed("")),
        // The algorithm is judged before the payload is even decoded.
        (format!("{}.!!!.s", b64(&json!({"alg": "none"}))), not_allowed("none")),
        (
            raw_token(json!({"alg": 256}), claims.clone(), "s"),
            Err(IdentityError::Malformed("token header `alg` is not a string")),
        ),
        (
            raw_token(json!({"typ": "JWT"}), claims.clone(), "s"),
            Err(IdentityError::Malformed("token header has no `alg`")),
        ),
        (
            raw_token(json!({"alg": "RS256", "crit": ["exp"]}), claims.clone(), "s"),
            Err(IdentityError::Malformed("token header has unsupported `crit` extensions")),
        ),
        (
            raw_token(json!({"alg": "RS256", "kid": 1}), claims.clone(), "s"),
            Err(IdentityError::Malformed("token header `kid` is not a string")),
        ),
        (
            raw_token(json!(["alg", "RS256"]), claims.clone(), "s"),
            Err(IdentityError::Malformed("token header is not base64url JSON")),
        ),
        (raw_token(json!({"alg": "RS256"}), json!({}), "s"), Err(IdentityError::MissingClaim("iss".into()))),
        (
            raw_token(json!({"alg": "RS256"}), json!({"iss": ["a"]}), "s"),
            Err(IdentityError::InvalidClaim("iss".into())),
        ),
        (
            raw_token(json!({"alg": "RS256"}), json!("x"), "s"),
            Err(IdentityError::Malformed("token payload is not base64url JSON")),
        ),
        ("a.b.c".into(), Err(IdentityError::Malformed("token header is not base64url JSON"))),
        ("e30.e30.e30".into(), Err(IdentityError::Malformed("token header has no `alg`"))),
        ("_-_-.-_-_.".into(), Err(IdentityError::Malformed("token header is not base64url JSON"))),
    ];
    for (token, want) in cases {
        let got = UnverifiedToken::parse(&token);
        let got = got.as_ref().map(|t| (t.alg, t.kid.as_deref())).map_err(Clone::clone);
        assert_eq!(got, want, "{token}");
    }
}

#[test]
fn signature_table() {
    let claims = json!({"iss": "https://idp", "sub": "a", "exp": 4_000_000_000u64});
    let good = sign_ed(&claims);
    let key = ed_decoding_key();

    assert_eq!(verify_signature(&good, TokenAlgorithm::EdDSA, &key).ok(), claims.as_object().cloned());

    let (message, signature) = good.rsplit_once('.').unwrap_or_default();
    let mut flipped = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    if let Some(first) = flipped.first_mut() {
        *first ^= 0x01;
    }
    let other_claims = raw_token(json!({"alg": "EdDSA", "kid": "ed"}), json!({"sub": "b"}), signature);
    let cases: Vec<(String, IdentityError)> = vec![
        (format!("{message}.{}", URL_SAFE_NO_PAD.encode(&flipped)), IdentityError::BadSignature),
        (format!("{message}."), IdentityError::BadSignature),
        (format!("{message}.AAAA"), IdentityError::BadSignature),
        (format!("{message}.*"), IdentityError::Malformed("token does not decode")),
        (other_claims, IdentityError::BadSignature),
    ];
    for (token, want) in cases {
        assert_eq!(verify_signature(&token, TokenAlgorithm::EdDSA, &key), Err(want), "{token}");
    }
    // The right key for a different algorithm than the header's.
    assert_eq!(verify_signature(&good, TokenAlgorithm::ES256, &key), Err(IdentityError::AlgorithmMismatch("ES256")));
}

fn rules() -> ClaimRules {
    ClaimRules {
        issuer: "https://idp.example".into(),
        audience: "sluice".into(),
        subject_claim: "sub".into(),
        groups_claim: "groups".into(),
        kind: PrincipalKind::Agent,
        leeway_secs: 30.0,
    }
}

const NOW: f64 = 1_800_000_000.0;

/// Valid claims with `changes` applied (a `null` value removes the claim).
fn claims(changes: Value) -> Map<String, Value> {
    let mut base = json!({
        "iss": "https://idp.example", "sub": "svc-1", "aud": "sluice",
        "exp": NOW + 300.0, "iat": NOW, "jti": "t-1", "groups": ["b", "a", "b"],
    });
    if let (Some(map), Value::Object(changes)) = (base.as_object_mut(), changes) {
        for (name, value) in changes {
            if value.is_null() {
                map.remove(&name);
            } else {
                map.insert(name, value);
            }
        }
    }
    base.as_object().cloned().unwrap_or_default()
}

#[test]
fn claims_table() {
    use IdentityError as E;
    let missing = |name: &str| Err(E::MissingClaim(name.into()));
    let invalid = |name: &str| Err(E::InvalidClaim(name.into()));
    let ok = Ok(());
    let cases: Vec<(Value, Result<(), IdentityError>)> = vec![
        (json!({}), ok.clone()),
        // iss: exact, string.
        (json!({"iss": "https://idp.example/"}), Err(E::IssuerMismatch)),
        (json!({"iss": "HTTPS://idp.example"}), Err(E::IssuerMismatch)),
        (json!({"iss": ["https://idp.example"]}), invalid("iss")),
        (json!({"iss": null}), missing("iss")),
        // exp: required, leeway 30 s.
        (json!({"exp": null}), missing("exp")),
        (json!({"exp": "4000000000"}), invalid("exp")),
        (json!({"exp": NOW - 29.0}), ok.clone()),
        (json!({"exp": NOW - 30.0}), Err(E::Expired)),
        (json!({"exp": NOW - 3600.0}), Err(E::Expired)),
        (json!({"exp": -1}), Err(E::Expired)),
        (json!({"exp": NOW + 0.5}), ok.clone()),
        // nbf: optional, leeway 30 s.
        (json!({"nbf": NOW + 30.0}), ok.clone()),
        (json!({"nbf": NOW + 31.0}), Err(E::NotYetValid)),
        (json!({"nbf": NOW - 10.0}), ok.clone()),
        (json!({"nbf": true}), invalid("nbf")),
        // aud contains the audience; azp/client_id only when aud is absent or empty.
        (json!({"aud": ["other", "sluice"]}), ok.clone()),
        (json!({"aud": "other"}), Err(E::WrongAudience)),
        (json!({"aud": "Sluice"}), Err(E::WrongAudience)),
        (json!({"aud": ["other"], "azp": "sluice"}), Err(E::WrongAudience)),
        (json!({"aud": "other", "client_id": "sluice"}), Err(E::WrongAudience)),
        (json!({"aud": null}), Err(E::WrongAudience)),
        (json!({"aud": null, "azp": "sluice"}), ok.clone()),
        (json!({"aud": null, "azp": "other"}), Err(E::WrongAudience)),
        (json!({"aud": null, "client_id": "sluice"}), ok.clone()),
        (json!({"aud": [], "azp": "sluice"}), ok.clone()),
        (json!({"aud": "", "client_id": "sluice"}), ok.clone()),
        (json!({"aud": [], "azp": "other", "client_id": "other"}), Err(E::WrongAudience)),
        (json!({"aud": ["sluice", 1]}), invalid("aud")),
        (json!({"aud": {"sluice": true}}), invalid("aud")),
        // subject
        (json!({"sub": null}), missing("sub")),
        (json!({"sub": ""}), invalid("sub")),
        (json!({"sub": 42}), invalid("sub")),
        // groups
        (json!({"groups": "solo"}), ok.clone()),
        (json!({"groups": null}), ok.clone()),
        (json!({"groups": ["a", 1]}), invalid("groups")),
        (json!({"groups": {"a": 1}}), invalid("groups")),
    ];
    for (changes, want) in cases {
        let got = check_claims(&claims(changes.clone()), &rules(), NOW).map(|_| ());
        assert_eq!(got, want, "changes {changes}");
    }
}

#[test]
fn principal_from_claims() {
    let got = check_claims(&claims(json!({})), &rules(), NOW);
    let want = Principal {
        subject: "svc-1".into(),
        kind: PrincipalKind::Agent,
        groups: vec!["a".into(), "b".into()],
        issuer: "https://idp.example".into(),
        token_id: Some("t-1".into()),
    };
    assert_eq!(got, Ok(want));

    let custom = ClaimRules {
        subject_claim: "email".into(),
        groups_claim: "roles".into(),
        kind: PrincipalKind::Human,
        ..rules()
    };
    let changes = json!({"email": "a@example.org", "roles": "admin", "jti": null});
    let got = check_claims(&claims(changes), &custom, NOW).map(|p| (p.subject, p.kind, p.groups, p.token_id));
    assert_eq!(got, Ok(("a@example.org".into(), PrincipalKind::Human, vec!["admin".into()], None)));

    // A missing groups claim means no groups.
    let got = check_claims(&claims(json!({"groups": null})), &rules(), NOW).map(|p| p.groups);
    assert_eq!(got, Ok(Vec::new()));
}
