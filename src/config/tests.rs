use std::collections::BTreeMap;

use super::*;

/// Loads `toml` from a file, as the service does, with `env` as the environment.
fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("authbroker.toml");
    std::fs::write(&path, toml).map_err(|e| e.to_string())?;
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load(Some(&path), &env)
}

const ARES: &str = r#"
[providers.ares]
kind = "ares"
client_id = "cid"
client_secret = "s3cret-value"
redirect_uris = ["https://app.example.com/cb"]
"#;

#[test]
fn defaults_are_the_embedded_laptop_setup() {
    let s = load("", &[]).expect("valid");
    assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
    assert!(
        matches!(&s.key, KeySetting::File { path, .. } if path.ends_with("data/authbroker.key"))
    );
    assert!(s.migrate_on_start);
    assert_eq!(s.state_ttl.as_secs(), 600);
}

#[test]
fn unknown_keys_are_named() {
    let e = load("listen = \"127.0.0.1:1\"\nlisten_addr = 1", &[]).expect_err("error");
    assert!(e.contains("listen_addr"), "{e}");
    let e = load(&format!("{ARES}client_secrte = \"x\""), &[]).expect_err("error");
    assert!(e.contains("client_secrte"), "{e}");
    let e = load("", &[("AUTHBROKER_LISTN", "x")]).expect_err("error");
    assert_eq!(e, "unknown environment variable AUTHBROKER_LISTN");
    // Other prefixes are not ours to judge, and every known name is accepted.
    assert!(load("", &[("AUTHBROKERX", "x"), ("HOME", "/root")]).is_ok());
    for name in env::KNOWN {
        let e = load("", &[(name, "")]);
        assert!(e.is_ok(), "{name}: {e:?}");
    }
}

#[test]
fn environment_overrides_the_file() {
    let s = load(
        "listen = \"127.0.0.1:1\"\ndatabase_url = \"sqlite://a.db\"",
        &[
            ("AUTHBROKER_LISTEN", "0.0.0.0:9"),
            ("DATABASE_URL", "sqlite://b.db"),
            ("AUTHBROKER_ENCRYPTION_KEY", "k"),
        ],
    )
    .expect("valid");
    assert_eq!(s.listen.to_string(), "0.0.0.0:9");
    assert_eq!(s.database_url, "sqlite://b.db");
    let s = load(
        "",
        &[
            ("DATABASE_URL", "sqlite://b.db"),
            ("AUTHBROKER_DATABASE_URL", "sqlite://c.db"),
        ],
    )
    .expect("valid");
    assert_eq!(s.database_url, "sqlite://c.db");
}

#[test]
fn postgres_requires_a_configured_key() {
    let e = load("database_url = \"postgres://db/authbroker\"", &[]).expect_err("error");
    assert!(e.starts_with("encryption_key: required"), "{e}");
    assert!(
        load(
            "database_url = \"postgres://db/authbroker\"",
            &[("AUTHBROKER_ENCRYPTION_KEY", "k")]
        )
        .is_ok()
    );
}

#[test]
fn provider_secrets_from_env_and_file_and_never_in_debug() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret");
    std::fs::write(&file, "from-file-secret\n").expect("write");
    let toml = format!(
        r#"
[providers.a]
kind = "askara"
client_id = "cid"
client_secret_env = "ASKARA_SECRET"
redirect_uris = ["https://app.example.com/cb"]
[providers.b]
kind = "arterra"
environment = "live"
client_id = "cid"
client_secret_file = "{}"
redirect_uris = ["https://app.example.com/cb"]
allow_password_grant = true
"#,
        file.display()
    );
    let s = load(&toml, &[("ASKARA_SECRET", "from-env-secret")]).expect("valid");
    assert_eq!(s.providers["a"].client_secret.secret(), "from-env-secret");
    assert_eq!(s.providers["b"].client_secret.secret(), "from-file-secret");
    assert_eq!(
        s.providers["b"].profile.token_url,
        "https://app.arterra.co/api/auth/oauth2-token"
    );
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("from-env-secret") && !debug.contains("from-file-secret"),
        "{debug}"
    );
}

#[test]
fn provider_mistakes_are_named() {
    let cases = [
        ("kind = \"nope\"", "kind"),
        (
            "kind = \"ares\"\nclient_id = \"c\"\nclient_secret = \"s\"\nredirect_uris = []",
            "redirect_uris",
        ),
        (
            "kind = \"ares\"\nclient_id = \"c\"\nredirect_uris = [\"https://a/cb\"]",
            "client_secret",
        ),
        (
            "kind = \"ares\"\nclient_id = \"c\"\nclient_secret = \"s\"\nclient_secret_env = \"X\"\nredirect_uris = [\"https://a/cb\"]",
            "client_secret",
        ),
        (
            "kind = \"ares\"\nclient_id = \"c\"\nclient_secret = \"s\"\nredirect_uris = [\"https://a/cb\"]\nallow_password_grant = true",
            "allow_password_grant",
        ),
        (
            "kind = \"ares\"\nenvironment = \"live\"\nclient_id = \"c\"\nclient_secret = \"s\"\nredirect_uris = [\"https://a/cb\"]",
            "environment",
        ),
        (
            "kind = \"oauth2\"\nclient_id = \"c\"\nclient_secret = \"s\"\nredirect_uris = [\"https://a/cb\"]",
            "authorize_url",
        ),
        (
            "kind = \"ares\"\nclient_id = \"c\"\nclient_secret = \"s\"\nredirect_uris = [\"not a url\"]",
            "redirect_uris",
        ),
    ];
    for (body, field) in cases {
        let e = load(&format!("[providers.p]\n{body}"), &[]).expect_err("error");
        assert!(e.contains(field), "{field}: {e}");
    }
}

#[test]
fn generic_oauth2_takes_every_knob() {
    let s = load(
        r#"
[providers.idp]
kind = "oauth2"
authorize_url = "https://idp.example/authorize"
token_url = "https://idp.example/token"
client_id = "c"
client_secret = "s"
redirect_uris = ["https://a.example/cb"]
client_auth = "body"
body_encoding = "json"
scope_separator = ","
default_scopes = ["a", "b"]
refresh_redirect_uri = true
default_token_lifetime_secs = 120
extra_authorize_params = { prompt = "consent" }
pkce = true
"#,
        &[],
    )
    .expect("valid");
    let p = &s.providers["idp"].profile;
    assert_eq!(p.client_auth, crate::providers::ClientAuth::Body);
    assert_eq!(p.body_encoding, crate::providers::BodyEncoding::Json);
    assert_eq!(p.scope_separator, ",");
    assert!(p.refresh_redirect_uri && p.pkce);
    assert_eq!(p.default_token_lifetime_secs, 120);
    assert_eq!(
        p.extra_authorize_params,
        vec![("prompt".to_string(), "consent".to_string())]
    );
}

#[test]
fn callers_need_names_and_long_tokens() {
    assert!(load("[[callers]]\nname = \"a\"\ntoken = \"short\"", &[]).is_err());
    assert!(
        load(
            "[[callers]]\nname = \"a b\"\ntoken = \"0123456789abcdef\"",
            &[]
        )
        .is_err()
    );
    let s = load(
        "[[callers]]\nname = \"a\"\ntoken = \"0123456789abcdef\"",
        &[],
    )
    .expect("valid");
    assert!(!format!("{s:?}").contains("0123456789abcdef"));
}

#[test]
fn callers_take_several_tokens_but_never_share_one() {
    let s = load(
        "[[callers]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\ntokens = [\"fedcba9876543210\"]\ntokens_env = [\"NEXT_TOKEN\"]",
        &[("NEXT_TOKEN", "next-token-0123456")],
    )
    .expect("valid");
    assert_eq!(s.callers[0].token_sha256s.len(), 3);
    let shared = load(
        "[[callers]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n\
         [[callers]]\nname = \"b\"\ntokens = [\"other-token-0123\", \"0123456789abcdef\"]",
        &[],
    )
    .expect_err("shared token");
    assert!(
        shared.contains("callers[1]") && shared.contains("\"a\""),
        "{shared}"
    );
    assert!(!shared.contains("0123456789abcdef"), "{shared}");
}

#[test]
fn policies_name_only_what_exists() {
    let caller = "[[callers]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n";
    let s = load(
        &format!(
            "{ARES}{caller}providers = [\"ares\"]\nrpcs = [\"GetAccessToken\"]\n\
             redirect_uris = [\"https://app.example.com/cb\"]\nscopes = [\"read\"]\n\
             allow_password_grant = false\nmax_credits_per_call = 5\nmax_credits_per_day = 50"
        ),
        &[],
    )
    .expect("valid");
    let policy = &s.callers[0].policy;
    assert!(policy.provider("ares").is_ok() && policy.provider("other").is_err());
    assert!(policy.rpc("RecordUsage").is_err());
    for (extra, named) in [
        ("providers = [\"nope\"]", "callers[0].providers"),
        ("rpcs = [\"GetToken\"]", "callers[0].rpcs"),
        (
            "redirect_uris = [\"https://evil.example.com/cb\"]",
            "callers[0].redirect_uris",
        ),
        ("max_credits_per_day = -1", "callers[0].max_credits_per_day"),
    ] {
        let err = load(&format!("{ARES}{caller}{extra}"), &[]).expect_err(extra);
        assert!(err.contains(named), "{extra}: {err}");
    }
}

#[test]
fn key_rings_name_their_mistakes() {
    let k = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let s = load(
        &format!(
            "encryption_keys = [{{ id = \"k1\", key = \"{k}\" }}, {{ id = \"k2\", key_env = \"K2\" }}]\n\
             active_encryption_key_id = \"k2\""
        ),
        &[("K2", k)],
    )
    .expect("valid");
    assert!(
        matches!(&s.key, KeySetting::Ring { active, keys } if active == "k2" && keys.len() == 2)
    );
    assert!(!format!("{s:?}").contains(k));
    for (toml, named) in [
        (
            format!(
                "encryption_keys = [{{ id = \"k1\", key = \"{k}\" }}, {{ id = \"k2\", key = \"{k}\" }}]"
            ),
            "active_encryption_key_id: required",
        ),
        (
            format!(
                "encryption_keys = [{{ id = \"k1\", key = \"{k}\" }}]\nactive_encryption_key_id = \"k9\""
            ),
            "\"k9\" is not an id",
        ),
        (
            format!(
                "encryption_key = \"{k}\"\nencryption_keys = [{{ id = \"k1\", key = \"{k}\" }}]"
            ),
            "not both",
        ),
        (
            format!("encryption_keys = [{{ id = \"k.1\", key = \"{k}\" }}]"),
            "encryption_keys[0].id",
        ),
    ] {
        let err = load(&toml, &[]).expect_err(named);
        assert!(err.contains(named), "{err}");
        assert!(!err.contains(k), "{err}");
    }
}

#[cfg(unix)]
#[test]
fn a_world_readable_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("k1");
    std::fs::write(&path, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").expect("write");
    let toml = format!(
        "encryption_keys = [{{ id = \"k1\", key_file = \"{}\" }}]",
        path.display()
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = load(&toml, &[]).expect_err("world-readable");
    assert!(err.contains("readable by every user"), "{err}");
    // A mounted Kubernetes secret: readable by the pod's group, not others.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).expect("chmod");
    load(&toml, &[]).expect("group-readable is the platform's choice");
}

#[test]
fn provider_endpoints_are_https_except_on_loopback() {
    let with = |url: &str| {
        load(
            &format!(
                "[providers.p]\nkind = \"oauth2\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
                 redirect_uris = [\"https://app.example.com/cb\"]\nauthorize_url = \"{url}/authorize\"\n\
                 token_url = \"https://idp.example.com/token\""
            ),
            &[],
        )
    };
    assert!(with("https://idp.example.com").is_ok());
    assert!(with("http://127.0.0.1:8080").is_ok());
    assert!(with("http://localhost:8080").is_ok());
    assert!(with("http://[::1]:8080").is_ok());
    let err = with("http://idp.example.com").expect_err("plaintext");
    assert!(
        err.contains("authorize_url") && err.contains("https"),
        "{err}"
    );
    let s = with("https://idp.example.com").expect("valid");
    assert!(
        s.providers["p"].profile.pkce,
        "PKCE on by default for oauth2"
    );
    let err = load(&format!("{ARES}require_iss = true"), &[]).expect_err("needs issuer");
    assert!(err.contains("require_iss"), "{err}");
}

#[test]
fn database_passwords_never_show() {
    let s = load(
        "database_url = \"postgres://app:pa55word@db:5432/ab\"",
        &[("AUTHBROKER_ENCRYPTION_KEY", "k")],
    )
    .expect("valid");
    assert!(!format!("{s:?}").contains("pa55word"));
    assert_eq!(
        redact_database_url("postgres://app:pa55word@db:5432/ab"),
        "postgres://app:***@db:5432/ab"
    );
    assert!(!redact_database_url("postgres://app:pa55word@db:bad/ab").contains("pa55word"));
}

#[test]
fn refresh_limits_per_provider() {
    let s = load(ARES, &[]).expect("valid");
    assert_eq!(s.providers["ares"].refresh, RefreshLimits::default());
    assert_eq!(s.tokens.refresh_interval, Some(Duration::from_secs(1)));
    let s = load(
        &format!(
            "{ARES}refresh_concurrency = 4\nrefresh_rate_per_sec = 2.5\nrefresh_token_max_idle_secs = 86400\n"
        ),
        &[],
    )
    .expect("valid");
    assert_eq!(
        s.providers["ares"].refresh,
        RefreshLimits {
            concurrency: 4,
            rate_per_sec: Some(2.5),
            max_idle_secs: Some(86_400),
        }
    );
    for (line, named) in [
        ("refresh_concurrency = 0", "refresh_concurrency"),
        ("refresh_rate_per_sec = 0.0", "refresh_rate_per_sec"),
        ("refresh_rate_per_sec = nan", "refresh_rate_per_sec"),
        (
            "refresh_token_max_idle_secs = 5",
            "refresh_token_max_idle_secs",
        ),
    ] {
        let e = load(&format!("{ARES}{line}\n"), &[]).expect_err(line);
        assert!(e.contains(named), "{line}: {e}");
    }
}

#[test]
fn oidc_needs_only_an_https_issuer() {
    let oidc = |extra: &str| {
        load(
            &format!(
                "[providers.idp]\nkind = \"oidc\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
                 redirect_uris = [\"https://app.example.com/cb\"]\n{extra}"
            ),
            &[],
        )
    };
    let s = oidc("issuer = \"https://id.example.com\"").expect("valid");
    let p = &s.providers["idp"];
    assert_eq!(p.issuer.as_deref(), Some("https://id.example.com"));
    assert_eq!(p.profile.default_scopes, ["openid"]);
    assert!(p.profile.pkce);
    let oidc_part = p.oidc.as_ref().expect("an OpenID provider");
    assert_eq!(oidc_part.issuer, "https://id.example.com");
    assert!(oidc_part.jwks_uri.get().is_none(), "discovered later");

    let err = oidc("").expect_err("no issuer");
    assert!(err.contains("providers.idp.issuer"), "{err}");
    let err = oidc("issuer = \"http://id.example.com\"").expect_err("plaintext");
    assert!(err.contains("issuer") && err.contains("https"), "{err}");
    let err = oidc("issuer = \"https://id.example.com\"\nusage_url = \"https://id.example.com/u\"")
        .expect_err("no usage endpoint");
    assert!(err.contains("usage_url"), "{err}");
    let err = oidc("issuer = \"https://id.example.com\"\ntoken_url = \"http://id.example.com/t\"")
        .expect_err("an override is held to the same rule");
    assert!(err.contains("token_url"), "{err}");
    // Overrides win over discovery; the knobs still apply.
    let s = oidc(
        "issuer = \"https://id.example.com\"\nrevocation_url = \"https://id.example.com/r\"\n\
         client_auth = \"body\"\ndefault_scopes = [\"openid\", \"email\"]",
    )
    .expect("valid");
    let p = &s.providers["idp"];
    let o = &p.oidc.as_ref().expect("oidc").overrides;
    assert_eq!(
        o.revocation_url.as_deref(),
        Some("https://id.example.com/r")
    );
    assert_eq!(o.client_auth, Some(crate::providers::ClientAuth::Body));
    assert_eq!(p.profile.default_scopes, ["openid", "email"]);
}
