//! The `id_token` (OIDC Core 3.1.3.7): a JWS whose claims must name this
//! issuer, this client, a time not yet past and the flow's nonce, signed by
//! one of the issuer's keys. Messages describe what is wrong, never the token.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;

use super::{KeyCache, jwk::Alg};
use crate::flow::ProviderFailure;

/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: f64 = 60.0;

/// Why an `id_token` was not accepted.
#[derive(Debug)]
pub(crate) enum IdTokenError {
    /// The token is not what the issuer should have sent.
    Invalid(String),
    /// No key of the issuer's (just fetched) key set fits the token: a
    /// forgery, or a rotation the key set does not show yet.
    UnknownKey(String),
    /// The key set could not be read, so the signature could not be checked.
    KeysUnavailable(ProviderFailure),
}

impl IdTokenError {
    /// As a provider failure of the call that returned the token.
    pub(crate) fn into_failure(self) -> ProviderFailure {
        match self {
            Self::Invalid(reason) | Self::UnknownKey(reason) => ProviderFailure::Malformed {
                http_status: None,
                reason: format!("id_token refused: {reason}"),
            },
            Self::KeysUnavailable(failure) => failure,
        }
    }
}

/// What the token must say.
pub(crate) struct Expect<'a> {
    /// `iss`.
    pub(crate) issuer: &'a str,
    /// Within `aud` (and `azp`, if present).
    pub(crate) client_id: &'a str,
    /// `nonce`, on the code flow; `None` on a refresh (OIDC Core 12.2).
    pub(crate) nonce: Option<&'a str>,
    /// `sub` of an existing connection (a refresh must not change it).
    pub(crate) subject: Option<&'a str>,
    /// Unix seconds.
    pub(crate) now: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    nonce: Option<String>,
    azp: Option<String>,
}

/// A parsed, not yet verified, compact JWS.
struct Jws<'a> {
    alg: Alg,
    kid: Option<String>,
    signing_input: &'a str,
    signature: Vec<u8>,
    claims: Claims,
}

/// Verifies `token` and returns its `sub`. `fetch` reads the key set.
pub(crate) async fn verify<F, Fut>(
    token: &str,
    expect: &Expect<'_>,
    keys: &KeyCache,
    fetch: F,
) -> Result<String, IdTokenError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<u8>, ProviderFailure>>,
{
    let jws = parse(token).map_err(IdTokenError::Invalid)?;
    // The claims first: a token for another issuer or client is refused
    // without touching the key set.
    let sub = check_claims(&jws.claims, expect).map_err(IdTokenError::Invalid)?;
    keys.verify(
        jws.alg,
        jws.kid.as_deref(),
        jws.signing_input.as_bytes(),
        &jws.signature,
        fetch,
    )
    .await?;
    Ok(sub)
}

fn parse(token: &str) -> Result<Jws<'_>, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS (three dot-separated parts)".into());
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| format!("the {what} is not base64url"))
    };
    let header: Header = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|_| "the header is not a JOSE header".to_owned())?;
    // RFC 7515 §4.1.11: an extension this code does not know must fail.
    if header.crit.is_some() {
        return Err("the header has crit extensions".into());
    }
    let alg = Alg::parse(&header.alg).ok_or_else(|| {
        format!(
            "alg {:?} is not accepted (RS*, PS*, ES256, ES384, EdDSA)",
            header.alg.chars().take(16).collect::<String>()
        )
    })?;
    let claims: Claims = serde_json::from_slice(&decode(payload, "payload")?)
        .map_err(|_| "the payload is not a JSON claims set".to_owned())?;
    let signing_input = &token[..token.len() - signature.len() - 1];
    Ok(Jws {
        alg,
        kid: header.kid,
        signing_input,
        signature: decode(signature, "signature")?,
        claims,
    })
}

/// OIDC Core 3.1.3.7 steps 2-4, 9 and 11 (and 12.2 on refresh); the `sub`.
fn check_claims(claims: &Claims, expect: &Expect<'_>) -> Result<String, String> {
    let bounded = |s: &str| s.chars().take(200).collect::<String>();
    match claims.iss.as_deref() {
        Some(iss) if iss == expect.issuer => {}
        Some(iss) => {
            return Err(format!(
                "iss {:?} is not the issuer {:?}",
                bounded(iss),
                expect.issuer
            ));
        }
        None => return Err("no iss".into()),
    }
    let audiences: Vec<&str> = match &claims.aud {
        Some(Audience::One(aud)) => vec![aud.as_str()],
        Some(Audience::Many(auds)) => auds.iter().map(String::as_str).collect(),
        None => Vec::new(),
    };
    if !audiences.contains(&expect.client_id) {
        return Err("aud does not name this client".into());
    }
    if claims
        .azp
        .as_deref()
        .is_some_and(|azp| azp != expect.client_id)
        || (audiences.len() > 1 && claims.azp.is_none())
    {
        return Err("azp does not name this client".into());
    }
    match claims.exp {
        Some(exp) if exp + LEEWAY_SECS > expect.now as f64 => {}
        Some(_) => return Err("expired (exp is past)".into()),
        None => return Err("no exp".into()),
    }
    if let Some(nonce) = expect.nonce
        && claims.nonce.as_deref() != Some(nonce)
    {
        return Err("nonce is not the flow's".into());
    }
    let sub = claims
        .sub
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or("no sub")?;
    if let Some(subject) = expect.subject.filter(|s| !s.is_empty())
        && subject != sub
    {
        return Err("sub names another account than the connection's".into());
    }
    Ok(sub.to_owned())
}

#[cfg(test)]
mod tests {
    use ring::{rand::SystemRandom, signature::EcdsaKeyPair};
    use serde_json::json;

    use super::*;
    use crate::oidc::jwk::tests::es256_key;

    const ISSUER: &str = "https://id.example.com";
    const NOW: i64 = 1_800_000_000;

    fn token(pair: &EcdsaKeyPair, header: serde_json::Value, claims: serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn claims() -> serde_json::Value {
        json!({"iss": ISSUER, "sub": "alice", "aud": "client-1", "exp": NOW + 300, "iat": NOW, "nonce": "n-1"})
    }

    fn expect() -> Expect<'static> {
        Expect {
            issuer: ISSUER,
            client_id: "client-1",
            nonce: Some("n-1"),
            subject: None,
            now: NOW,
        }
    }

    async fn check(
        token: &str,
        expect: &Expect<'_>,
        jwk: &serde_json::Value,
    ) -> Result<String, String> {
        let doc = serde_json::to_vec(&json!({ "keys": [jwk] })).expect("json");
        verify(token, expect, &KeyCache::default(), || async {
            Ok(doc.clone())
        })
        .await
        .map_err(|e| match e {
            IdTokenError::Invalid(reason) | IdTokenError::UnknownKey(reason) => reason,
            IdTokenError::KeysUnavailable(f) => panic!("keys unavailable: {f:?}"),
        })
    }

    fn with(change: serde_json::Value) -> serde_json::Value {
        let mut c = claims();
        for (k, v) in change.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    }

    #[tokio::test]
    async fn a_valid_token_gives_its_subject() {
        let (pair, jwk) = es256_key("k1");
        let t = token(&pair, json!({"alg": "ES256", "kid": "k1"}), claims());
        assert_eq!(check(&t, &expect(), &jwk).await, Ok("alice".into()));
        // Several audiences with azp naming this client.
        let t = token(
            &pair,
            json!({"alg": "ES256", "kid": "k1"}),
            with(json!({"aud": ["other", "client-1"], "azp": "client-1"})),
        );
        assert_eq!(check(&t, &expect(), &jwk).await, Ok("alice".into()));
    }

    #[tokio::test]
    async fn each_claim_is_checked() {
        let (pair, jwk) = es256_key("k1");
        let header = json!({"alg": "ES256", "kid": "k1"});
        let cases = [
            (
                json!({"iss": "https://evil.example.com"}),
                "is not the issuer",
            ),
            (json!({"aud": "client-2"}), "aud"),
            (json!({"aud": ["client-1", "other"]}), "azp"),
            (json!({"exp": NOW - 61}), "expired"),
            (json!({"nonce": "n-2"}), "nonce"),
            (json!({"nonce": null}), "nonce"),
            (json!({"sub": ""}), "sub"),
        ];
        for (change, needle) in cases {
            let t = token(&pair, header.clone(), with(change.clone()));
            let refused = check(&t, &expect(), &jwk).await.expect_err("refused");
            assert!(refused.contains(needle), "{change}: {refused}");
            assert!(!refused.contains(&t), "the message must not hold the token");
        }
        // Within the leeway.
        let t = token(&pair, header.clone(), with(json!({"exp": NOW - 30})));
        assert!(check(&t, &expect(), &jwk).await.is_ok());
        // On refresh: no nonce expected, but the same account.
        let refresh = Expect {
            nonce: None,
            subject: Some("bob"),
            ..expect()
        };
        let t = token(&pair, header, with(json!({"nonce": null})));
        let refused = check(&t, &refresh, &jwk).await.expect_err("refused");
        assert!(refused.contains("another account"), "{refused}");
    }

    #[tokio::test]
    async fn forged_and_unsigned_tokens_are_refused() {
        let (pair, jwk) = es256_key("k1");
        let (forger, _) = es256_key("k1");
        let forged = token(&forger, json!({"alg": "ES256", "kid": "k1"}), claims());
        assert!(
            check(&forged, &expect(), &jwk)
                .await
                .expect_err("forged")
                .contains("signature")
        );

        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        assert!(
            check(&unsigned, &expect(), &jwk)
                .await
                .expect_err("none")
                .contains("alg")
        );
        let hmac = token(&pair, json!({"alg": "HS256"}), claims());
        assert!(
            check(&hmac, &expect(), &jwk)
                .await
                .expect_err("hs256")
                .contains("alg")
        );
        let crit = token(&pair, json!({"alg": "ES256", "crit": ["exp"]}), claims());
        assert!(
            check(&crit, &expect(), &jwk)
                .await
                .expect_err("crit")
                .contains("crit")
        );
        // A payload changed after signing.
        let valid = token(&pair, json!({"alg": "ES256", "kid": "k1"}), claims());
        let parts: Vec<&str> = valid.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(with(json!({"sub": "mallory"})).to_string()),
            parts[2]
        );
        assert!(
            check(&tampered, &expect(), &jwk)
                .await
                .expect_err("tampered")
                .contains("signature")
        );
        assert!(
            check("a.b", &expect(), &jwk)
                .await
                .expect_err("shape")
                .contains("compact")
        );
    }
}
