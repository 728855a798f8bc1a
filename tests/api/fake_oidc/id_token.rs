//! The id_token of a token answer (OIDC Core §2, §3.1.3.7, §12.2), and the ways a `Forgery` bends it,
//! one thing each, so a test that sees it refused knows which check refused it.

use serde_json::{Value, json};

use super::Forgery;
use super::jws::{self, Keys};

/// How long an id_token is valid.
const LIFETIME_SECS: u64 = 3600;
/// How long ago a `Forgery::Expired` token expired.
const EXPIRED_AGO_SECS: u64 = 600;

/// The true claims, before any forgery.
pub(super) struct Claims<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audience: &'a str,
    /// The authorization request's nonce; `None` on a refresh.
    pub nonce: Option<&'a str>,
    pub auth_time: u64,
    pub now: u64,
}

/// The signed id_token, `None` when the forgery leaves it out of the answer.
pub(super) fn issue(keys: &Keys, forgery: &Forgery, claims: &Claims<'_>) -> Option<String> {
    let mut header = json!({ "alg": "ES256", "typ": "JWT", "kid": keys.current().kid() });
    let mut payload = json!({
        "iss": claims.issuer,
        "sub": claims.subject,
        "aud": claims.audience,
        "exp": claims.now + LIFETIME_SECS,
        "iat": claims.now,
        "auth_time": claims.auth_time,
    });
    if let Some(nonce) = claims.nonce {
        payload["nonce"] = json!(nonce);
    }
    let mut signer = keys.current();
    match forgery {
        Forgery::None => {}
        Forgery::MissingIdToken => return None,
        // The current kid, so only the signature check can tell.
        Forgery::WrongKey => signer = keys.rogue(),
        Forgery::WrongIssuer => payload["iss"] = json!("https://other-issuer.example.test"),
        Forgery::WrongAudience => payload["aud"] = json!("another-client"),
        Forgery::Expired => payload["exp"] = json!(claims.now.saturating_sub(EXPIRED_AGO_SECS)),
        Forgery::WrongNonce => payload["nonce"] = json!("not-the-nonce-that-was-sent"),
        Forgery::WrongSubject => payload["sub"] = json!(format!("{}-other", claims.subject)),
        Forgery::AlgNone => {
            header["alg"] = json!("none");
            return Some(format!("{}.", jws::signing_input(&header, &payload)));
        }
    }
    Some(jws::sign_compact(signer, &header, &payload))
}

#[test]
fn each_forgery_changes_one_thing() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let keys = Keys::generate();
    let claims = Claims {
        issuer: "http://127.0.0.1:1",
        subject: "user-1",
        audience: "client-1",
        nonce: Some("n-1"),
        auth_time: 1_000,
        now: 2_000,
    };
    let part = |token: &str, index: usize| -> Value {
        let segment = token.split('.').nth(index).expect("a JWS segment");
        let bytes = URL_SAFE_NO_PAD.decode(segment).expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    let verifies = |token: &str| {
        let (input, signature) = token.rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        let jwk = keys.current().jwk();
        let (x, y) = (jwk["x"].as_str(), jwk["y"].as_str());
        jws::verify_es256(x.expect("x"), y.expect("y"), input.as_bytes(), &signature)
    };
    let honest = issue(&keys, &Forgery::None, &claims).expect("an id_token");
    assert!(verifies(&honest));
    let (header, payload) = (part(&honest, 0), part(&honest, 1));
    assert_eq!(header["kid"], keys.current().kid());
    assert_eq!(payload["nonce"], "n-1");

    let forged = |forgery: Forgery| issue(&keys, &forgery, &claims).expect("an id_token");
    let wrong_key = forged(Forgery::WrongKey);
    assert!(!verifies(&wrong_key));
    assert_eq!(part(&wrong_key, 0), header);
    assert_eq!(part(&wrong_key, 1), payload);
    for (forgery, claim) in [
        (Forgery::WrongIssuer, "iss"),
        (Forgery::WrongAudience, "aud"),
        (Forgery::Expired, "exp"),
        (Forgery::WrongNonce, "nonce"),
        (Forgery::WrongSubject, "sub"),
    ] {
        let token = forged(forgery);
        assert!(verifies(&token), "a {claim} forgery is still signed right");
        let mut changed = part(&token, 1);
        assert_ne!(changed[claim], payload[claim]);
        changed[claim] = payload[claim].clone();
        assert_eq!(changed, payload, "only {claim} differs");
    }
    let unsigned = forged(Forgery::AlgNone);
    assert!(unsigned.ends_with('.'));
    assert_eq!(part(&unsigned, 0)["alg"], "none");
    assert!(issue(&keys, &Forgery::MissingIdToken, &claims).is_none());
}
