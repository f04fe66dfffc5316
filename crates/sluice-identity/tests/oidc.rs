//! `Authenticator` against a real OpenID Provider (node-oidc-provider, see
//! `tests/oidc-provider/server.mjs`): real tokens are accepted, and each
//! attack is refused with its own error.
//!
//! Owns: the end-to-end identity checks, discovery to `Principal`.
//! Does not: start anything but server.mjs on 127.0.0.1; the fixture lives in
//! `support`.

mod support;

use serde_json::{Value, json};
use sluice_identity::IdentityError;
use sluice_model::{Principal, PrincipalKind};
use std::time::Duration;
use support::*;

#[tokio::test]
async fn real_token_is_accepted() -> TestResult {
    let idp = shared()?;
    let auth = authenticator(vec![provider_config(idp.issuer())])?;
    let token = fetch_token(idp.issuer(), "sluice-test", "urn:sluice").await?;
    let jti = claims_of(&token)?.get("jti").and_then(Value::as_str).map(str::to_string);
    assert!(jti.is_some(), "the provider's token has a jti");

    let principal = auth.authenticate(&token).await?;
    assert_eq!(
        principal,
        Principal {
            subject: "sluice-test".into(),
            kind: PrincipalKind::Agent,
            groups: vec!["analysts".into()],
            issuer: idp.issuer().to_string(),
            token_id: jti,
        }
    );
    // Cached now: a second use needs no fetch.
    let fetches = auth.jwks_fetches();
    assert_eq!(auth.authenticate(&token).await?, principal);
    assert_eq!(auth.jwks_fetches(), fetches);
    Ok(())
}

#[tokio::test]
async fn groups_are_sorted_and_deduplicated_and_kind_comes_from_config() -> TestResult {
    let idp = shared()?;
    let config = sluice_config::OidcProvider { kind: PrincipalKind::Service, ..provider_config(idp.issuer()) };
    let auth = authenticator(vec![config])?;
    let token = fetch_token(idp.issuer(), "sluice-test-ops", "urn:sluice").await?;
    let principal = auth.authenticate(&token).await?;
    assert_eq!(principal.subject, "sluice-test-ops");
    assert_eq!(principal.groups, ["analysts", "ops"]);
    assert_eq!(principal.kind, PrincipalKind::Service);

    // Another groups claim that the token lacks: no groups, not an error.
    let config = sluice_config::OidcProvider { groups_claim: "roles".into(), ..provider_config(idp.issuer()) };
    let principal = authenticator(vec![config])?.authenticate(&token).await?;
    assert!(principal.groups.is_empty());
    Ok(())
}

#[tokio::test]
async fn es256_and_eddsa_tokens_are_accepted() -> TestResult {
    let idp = shared()?;
    let auth = authenticator(vec![provider_config(idp.issuer())])?;
    for (resource, alg) in [("urn:sluice:es256", "ES256"), ("urn:sluice:eddsa", "EdDSA")] {
        let token = fetch_token(idp.issuer(), "sluice-test", resource).await?;
        let header = segment(&token, 0)?;
        assert_eq!(header.get("alg").and_then(Value::as_str), Some(alg));
        assert_eq!(auth.authenticate(&token).await?.subject, "sluice-test", "{alg}");
    }
    Ok(())
}

#[tokio::test]
async fn real_token_for_another_audience_is_refused() -> TestResult {
    let idp = shared()?;
    let auth = authenticator(vec![provider_config(idp.issuer())])?;
    let token = fetch_token(idp.issuer(), "sluice-test", "urn:other").await?;
    assert_eq!(claims_of(&token)?.get("aud"), Some(&json!("other")));
    assert_eq!(auth.authenticate(&token).await, Err(IdentityError::WrongAudience));
    Ok(())
}

#[tokio::test]
async fn alg_none_is_refused_before_any_key_lookup() -> TestResult {
    let idp = shared()?;
    let auth = authenticator(vec![provider_config(idp.issuer())])?;
    let real = fetch_token(idp.issuer(), "sluice-test", "urn:sluice").await?;
    let claims = claims_of(&real)?;
    let signature = real.rsplit('.').next().unwrap_or_default();
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "kid": idp.first.kid, "typ": "at+jwt"});
        let unsigned = raw_token(&header, &claims, b"");
        let want = Err(IdentityError::AlgorithmNotAllowed(format!("`{alg}`")));
        assert_eq!(auth.authenticate(&unsigned).await, want);
        // With the real token's signature pasted on.
        let (message, _) = unsigned.rsplit_once('.').unwrap_or_default();
        assert_eq!(auth.authenticate(&format!("{message}.{signature}")).await, want);
    }
    assert_eq!(auth.jwks_fetches(), 0, "refused before discovery or JWKS");
    Ok(())
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() -> TestResult {
    let idp = shared()?;
    let auth = authenticator(vec![provider_config(idp.issuer())])?;
    let pem = std::fs::read(&idp.first.public_pem_file)?;
    let jwks = get_json(&format!("{}/jwks", idp.issuer())).await?;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == json!(idp.first.kid)))
        .ok_or("the provider publishes its key")?
        .clone();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let n = b64.decode(jwk["n"].as_str().unwrap_or_default())?;
    let e = b64.decode(jwk["e"].as_str().unwrap_or_default())?;
    let der_body: String = String::from_utf8_lossy(&pem).lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(der_body)?;
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("PEM", pem.clone()),
        ("SPKI DER", der),
        ("raw n", n.clone()),
        ("raw n||e", [n, e].concat()),
        ("JWK JSON", jwk.to_string().into_bytes()),
    ];
    for alg in [jsonwebtoken::Algorithm::HS256, jsonwebtoken::Algorithm::HS384, jsonwebtoken::Algorithm::HS512] {
        for (what, secret) in &secrets {
            let mut header = jsonwebtoken::Header::new(alg);
            header.kid = Some(idp.first.kid.clone());
            let key = jsonwebtoken::EncodingKey::from_secret(secret);
            let token = jsonwebtoken::encode(&header, &claims(idp.issuer()), &key)?;
            let want = Err(IdentityError::AlgorithmNotAllowed(format!("`{alg:?}`")));
            assert_eq!(auth.authenticate(&token).await, want, "{alg:?} keyed with {what}");
        }
    }
    assert_eq!(auth.jwks_fetches(), 0, "refused before discovery or JWKS");
    Ok(())
}

#[tokio::test]
async fn crafted_claims_signed_with_the_real_key() -> TestResult {
    let idp = shared()?;
    let auth = authenticator(vec![provider_config(idp.issuer())])?;
    let iss = idp.issuer();
    let now = now();
    let unknown_issuer = |iss: &str| Err(IdentityError::UnknownIssuer(format!("`{iss}`")));
    let cases: Vec<(&str, Value, Result<&str, IdentityError>)> = vec![
        ("baseline", json!({}), Ok("crafted")),
        ("expired", json!({"exp": now - 3600}), Err(IdentityError::Expired)),
        ("expired just beyond leeway", json!({"exp": now - 45}), Err(IdentityError::Expired)),
        ("expired within leeway", json!({"exp": now - 5}), Ok("crafted")),
        ("no exp", json!({"exp": null}), Err(IdentityError::MissingClaim("exp".into()))),
        ("nbf in the future", json!({"nbf": now + 3600}), Err(IdentityError::NotYetValid)),
        ("nbf within leeway", json!({"nbf": now + 5}), Ok("crafted")),
        ("wrong issuer", json!({"iss": "http://127.0.0.1:1"}), unknown_issuer("http://127.0.0.1:1")),
        ("issuer with a slash", json!({"iss": format!("{iss}/")}), unknown_issuer(&format!("{iss}/"))),
        ("wrong audience", json!({"aud": "other"}), Err(IdentityError::WrongAudience)),
        ("aud lists others, azp ok", json!({"aud": ["other"], "azp": "sluice"}), Err(IdentityError::WrongAudience)),
        ("aud among several", json!({"aud": ["other", "sluice"]}), Ok("crafted")),
        ("no aud, azp wrong", json!({"aud": null, "azp": "other"}), Err(IdentityError::WrongAudience)),
        ("no aud, no azp", json!({"aud": null}), Err(IdentityError::WrongAudience)),
        ("no aud, azp ok", json!({"aud": null, "azp": "sluice"}), Ok("crafted")),
        ("no aud, client_id ok", json!({"aud": null, "client_id": "sluice"}), Ok("crafted")),
        ("empty aud, azp ok", json!({"aud": [], "azp": "sluice"}), Ok("crafted")),
        ("no sub", json!({"sub": null}), Err(IdentityError::MissingClaim("sub".into()))),
        ("groups not strings", json!({"groups": [1]}), Err(IdentityError::InvalidClaim("groups".into()))),
    ];
    for (name, changes, want) in cases {
        let token = sign_rs256(&idp.first, &with(claims(iss), changes))?;
        let got = auth.authenticate(&token).await.map(|p| p.subject);
        assert_eq!(got.as_deref().map_err(Clone::clone), want, "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn a_flipped_byte_breaks_the_signature() -> TestResult {
    let idp = shared()?;
    let auth = authenticator(vec![provider_config(idp.issuer())])?;
    let token = fetch_token(idp.issuer(), "sluice-test", "urn:sluice").await?;
    assert!(auth.authenticate(&token).await.is_ok());

    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (message, signature) = token.rsplit_once('.').ok_or("three segments")?;
    for index in [0, 100, 255] {
        let mut bytes = b64.decode(signature)?;
        if let Some(byte) = bytes.get_mut(index) {
            *byte ^= 0x80;
        }
        let tampered = format!("{message}.{}", b64.encode(&bytes));
        assert_eq!(auth.authenticate(&tampered).await, Err(IdentityError::BadSignature), "byte {index}");
    }
    // Claims changed under the real signature.
    let (header, _) = message.split_once('.').ok_or("header")?;
    let claims = with(claims_of(&token)?, json!({"groups": ["admins"]}));
    let forged = format!("{header}.{}.{signature}", b64.encode(claims.to_string()));
    assert_eq!(auth.authenticate(&forged).await, Err(IdentityError::BadSignature));
    // Signature cut short, or missing.
    assert_eq!(auth.authenticate(&format!("{message}.{}", &signature[..8])).await, Err(IdentityError::BadSignature));
    assert_eq!(auth.authenticate(&format!("{message}.")).await, Err(IdentityError::BadSignature));
    Ok(())
}

#[tokio::test]
async fn alg_that_does_not_fit_the_key_is_refused() -> TestResult {
    let idp = shared()?;
    let auth = authenticator(vec![provider_config(idp.issuer())])?;
    let jwks = get_json(&format!("{}/jwks", idp.issuer())).await?;
    let kid_of = |kty: &str| {
        jwks["keys"].as_array().and_then(|keys| keys.iter().find(|k| k["kty"] == json!(kty))).map(|k| k["kid"].clone())
    };
    let (rsa, ec, okp) = (json!(idp.first.kid), kid_of("EC"), kid_of("OKP"));
    let claims = claims(idp.issuer());
    let cases = [
        (json!({"alg": "ES256", "kid": rsa}), "ES256"), // EC algorithm, RSA key
        (json!({"alg": "EdDSA", "kid": rsa}), "EdDSA"),
        (json!({"alg": "PS256", "kid": rsa}), "PS256"), // the JWK says alg RS256
        (json!({"alg": "RS256", "kid": ec}), "RS256"),
        (json!({"alg": "ES384", "kid": ec}), "ES384"), // P-256 key
        (json!({"alg": "ES256", "kid": okp}), "ES256"),
    ];
    for (header, alg) in cases {
        let token = raw_token(&header, &claims, &[7u8; 64]);
        assert_eq!(auth.authenticate(&token).await, Err(IdentityError::AlgorithmMismatch(alg)), "{header}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refetches_the_jwks_at_most_once_per_interval() -> TestResult {
    let idp = OidcServer::start()?;
    // Long enough that the steps meant to fall inside it do, even on a busy machine.
    let interval = Duration::from_secs(1);
    let auth = authenticator(vec![provider_config(idp.issuer())])?.with_jwks_refetch_interval(interval);
    let token = fetch_token(idp.issuer(), "sluice-test", "urn:sluice").await?;
    auth.authenticate(&token).await?;
    assert_eq!((auth.jwks_fetches(), idp.jwks_requests().await?), (1, 1));

    let unknown = |kid: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_string());
        raw_token(&serde_json::to_value(&header).unwrap_or_default(), &claims(idp.issuer()), &[1u8; 256])
    };
    // Within the interval of the first fetch: refused from the cache.
    assert_eq!(auth.authenticate(&unknown("k-0")).await, Err(IdentityError::UnknownKey));
    assert_eq!(auth.jwks_fetches(), 1);

    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    // Two unknown kids in a row: one re-fetch, then the rate limit.
    assert_eq!(auth.authenticate(&unknown("k-1")).await, Err(IdentityError::UnknownKey));
    assert_eq!(auth.jwks_fetches(), 2, "an unknown kid re-fetches the JWKS");
    assert_eq!(auth.authenticate(&unknown("k-2")).await, Err(IdentityError::UnknownKey));
    assert_eq!(auth.jwks_fetches(), 2, "the second unknown kid is rate-limited");

    // Sixteen at once after the interval share one fetch.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (auth, token) = (auth.clone(), unknown(&format!("burst-{i}")));
        tasks.spawn(async move { auth.authenticate(&token).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result?, Err(IdentityError::UnknownKey));
    }
    assert_eq!(auth.jwks_fetches(), 3, "concurrent unknown kids share one fetch");
    assert_eq!(idp.jwks_requests().await?, 3, "the provider saw the same number of JWKS requests");

    // The known key still works throughout.
    assert!(auth.authenticate(&token).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn tokens_of_an_unconfigured_provider_are_refused() -> TestResult {
    let ours = shared()?;
    let theirs = OidcServer::start()?;
    let auth = authenticator(vec![provider_config(ours.issuer())])?;

    let foreign = fetch_token(theirs.issuer(), "sluice-test", "urn:sluice").await?;
    let want = Err(IdentityError::UnknownIssuer(format!("`{}`", theirs.issuer())));
    assert_eq!(auth.authenticate(&foreign).await, want);

    // Their key, our issuer, their kid: our JWKS does not have it.
    let claims = claims(ours.issuer());
    let their_key_their_kid = sign_rs256(&theirs.first, &claims)?;
    assert_eq!(auth.authenticate(&their_key_their_kid).await, Err(IdentityError::UnknownKey));
    // Their key under our kid: the signature does not verify.
    let mut disguised = theirs.first.clone();
    disguised.kid = ours.first.kid.clone();
    let their_key_our_kid = sign_rs256(&disguised, &claims)?;
    assert_eq!(auth.authenticate(&their_key_our_kid).await, Err(IdentityError::BadSignature));

    // Configured for both, each provider's own tokens pass.
    let both = authenticator(vec![provider_config(ours.issuer()), provider_config(theirs.issuer())])?;
    assert_eq!(both.authenticate(&foreign).await?.issuer, theirs.issuer());
    assert_eq!(both.authenticate(&sign_rs256(&ours.first, &claims)?).await?.issuer, ours.issuer());
    Ok(())
}

#[tokio::test]
async fn a_rotated_key_is_picked_up() -> TestResult {
    let mut idp = OidcServer::start()?;
    let interval = Duration::from_millis(200);
    let auth = authenticator(vec![provider_config(idp.issuer())])?.with_jwks_refetch_interval(interval);
    let old = fetch_token(idp.issuer(), "sluice-test", "urn:sluice").await?;
    auth.authenticate(&old).await?;

    let rotated = idp.rotate()?;
    assert_ne!(rotated.kid, idp.first.kid);
    let new = fetch_token(idp.issuer(), "sluice-test", "urn:sluice").await?;
    assert_eq!(segment(&new, 0)?.get("kid"), Some(&json!(rotated.kid)), "signed with the new key");

    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    assert_eq!(auth.authenticate(&new).await?.subject, "sluice-test");
    assert_eq!(auth.jwks_fetches(), 2);
    assert_eq!(auth.authenticate(&old).await?.subject, "sluice-test", "the old key is still published");
    Ok(())
}

#[tokio::test]
async fn a_provider_down_at_startup_is_retried_later() -> TestResult {
    let port = free_port()?;
    let issuer = format!("http://127.0.0.1:{port}");
    let auth = authenticator(vec![provider_config(&issuer)])?.with_jwks_refetch_interval(Duration::from_millis(100));
    let header = json!({"alg": "RS256", "kid": "whatever"});
    let early = raw_token(&header, &claims(&issuer), &[0u8; 256]);
    match auth.authenticate(&early).await {
        Err(IdentityError::ProviderUnavailable { issuer: named, reason }) => {
            assert_eq!(named, issuer);
            assert!(!reason.is_empty());
        }
        other => panic!("wanted ProviderUnavailable, got {other:?}"),
    }

    let idp = OidcServer::start_on(port)?;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let token = fetch_token(idp.issuer(), "sluice-test", "urn:sluice").await?;
    assert_eq!(auth.authenticate(&token).await?.issuer, issuer);
    Ok(())
}

#[tokio::test]
async fn check_providers_reports_each_issuer() -> TestResult {
    let idp = shared()?;
    let dead = format!("http://127.0.0.1:{}", free_port()?);
    let slashed = format!("{}/", idp.issuer());
    let auth = authenticator(vec![provider_config(idp.issuer()), provider_config(&dead), provider_config(&slashed)])?;
    let report = auth.check_providers().await;
    let issuers: Vec<&str> = report.iter().map(|(issuer, _)| issuer.as_str()).collect();
    assert_eq!(issuers, [idp.issuer(), dead.as_str(), slashed.as_str()]);
    assert_eq!(report[0].1, Ok(()));
    assert!(matches!(&report[1].1, Err(IdentityError::ProviderUnavailable { .. })), "{:?}", report[1]);
    match &report[2].1 {
        Err(IdentityError::ProviderUnavailable { reason, .. }) => {
            assert!(reason.contains("names issuer"), "{reason}")
        }
        other => panic!("a discovery document for another issuer must fail: {other:?}"),
    }
    // check_providers filled the cache: the first token needs no fetch.
    let fetches = auth.jwks_fetches();
    let token = fetch_token(idp.issuer(), "sluice-test", "urn:sluice").await?;
    auth.authenticate(&token).await?;
    assert_eq!(auth.jwks_fetches(), fetches);
    Ok(())
}

#[tokio::test]
async fn a_provider_that_never_answers_times_out() -> TestResult {
    // Accepts connections (the kernel does) but never responds.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let issuer = format!("http://{}", listener.local_addr()?);
    let auth = authenticator(vec![provider_config(&issuer)])?;
    let started = std::time::Instant::now();
    let report = auth.check_providers().await;
    let elapsed = started.elapsed();
    assert!(matches!(report[0].1, Err(IdentityError::ProviderUnavailable { .. })), "{report:?}");
    assert!(elapsed < Duration::from_secs(8), "gave up after {elapsed:?}");
    drop(listener);
    Ok(())
}

#[tokio::test]
async fn garbage_is_refused() -> TestResult {
    let idp = shared()?;
    let auth = authenticator(vec![provider_config(idp.issuer())])?;
    let real = fetch_token(idp.issuer(), "sluice-test", "urn:sluice").await?;
    let huge = "x".repeat(1 << 20);
    let inputs: Vec<String> = vec![
        String::new(),
        huge.clone(),
        format!("{huge}.{huge}.{huge}"),
        "a.b.c".into(),
        "...".into(),
        "\u{0}".into(),
        "ÿÿÿÿ.ÿÿÿÿ.ÿÿÿÿ".into(),
        "eyJ.eyJ.eyJ".into(),
        "e30.e30.e30".into(),
        format!("{real}.extra"),
        real.replacen('.', "..", 1),
        real.chars().rev().collect(),
        real[..real.len() / 2].to_string(),
        "Bearer ".to_string() + &real,
    ];
    for input in inputs {
        let shown: String = input.chars().take(48).collect();
        assert!(auth.authenticate(&input).await.is_err(), "{shown:?} was accepted");
    }
    Ok(())
}
