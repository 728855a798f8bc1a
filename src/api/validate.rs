//! The parser at the edge: request fields become domain values here, once,
//! and every failure names its field.

use crate::{
    domain::{
        ConnectionId, Credits, IdempotencyKey, Labels, ParseError, ProviderId, RedirectUri, Scopes,
        Subject, UsageLabel, bounded_text,
    },
    error::{Error, Result},
};

fn named<T>(field: &'static str, parsed: Result<T, ParseError>) -> Result<T> {
    parsed.map_err(|e| Error::invalid(field, e.0))
}

/// A required connection id.
pub(super) fn connection_id(value: &str) -> Result<ConnectionId> {
    named("connection_id", ConnectionId::parse(value))
}

/// A required provider id.
pub(super) fn provider(value: String) -> Result<ProviderId> {
    named("provider", ProviderId::parse(value))
}

/// An optional provider id filter: empty means any.
pub(super) fn provider_filter(value: String) -> Result<Option<ProviderId>> {
    optional(value, provider)
}

/// A required subject.
pub(super) fn subject(value: String) -> Result<Subject> {
    named("subject", Subject::parse(value))
}

/// An optional subject filter: empty means any.
pub(super) fn subject_filter(value: String) -> Result<Option<Subject>> {
    optional(value, subject)
}

/// An optional redirect URI: empty means the provider's only one.
pub(super) fn redirect_uri(value: String) -> Result<Option<RedirectUri>> {
    optional(value, |v| named("redirect_uri", RedirectUri::parse(v)))
}

/// Labels of a connection, or a label filter.
pub(super) fn labels(
    field: &'static str,
    values: std::collections::HashMap<String, String>,
) -> Result<Labels> {
    named(field, Labels::parse(values))
}

/// An optional connection id: empty means none.
pub(super) fn connection_id_option(value: String) -> Result<Option<ConnectionId>> {
    optional(value, |v| connection_id(&v))
}

/// Scopes a token must carry; `None` when none are required.
pub(super) fn required_scopes(values: Vec<String>) -> Result<Option<Scopes>> {
    if values.is_empty() {
        return Ok(None);
    }
    named("required_scopes", Scopes::parse(values)).map(Some)
}

/// Requested scopes.
pub(super) fn scopes(values: Vec<String>) -> Result<Scopes> {
    named("scopes", Scopes::parse(values))
}

/// A required idempotency key.
pub(super) fn idempotency_key(value: String) -> Result<IdempotencyKey> {
    named("idempotency_key", IdempotencyKey::parse(value))
}

/// A required usage label.
pub(super) fn usage(value: String) -> Result<UsageLabel> {
    named("usage", UsageLabel::parse(value))
}

/// Credits.
pub(super) fn credits(value: f64) -> Result<Credits> {
    named("credits", Credits::parse(value))
}

/// A required free text field of at most `max` characters.
pub(super) fn required(field: &'static str, value: String, max: usize) -> Result<String> {
    named(field, bounded_text(&value, max)).map(|()| value)
}

/// An optional free text field: empty means absent.
pub(super) fn optional_text(
    field: &'static str,
    value: String,
    max: usize,
) -> Result<Option<String>> {
    optional(value, |v| required(field, v, max))
}

fn optional<T>(value: String, parse: impl FnOnce(String) -> Result<T>) -> Result<Option<T>> {
    if value.is_empty() {
        return Ok(None);
    }
    parse(value).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field() {
        let e = subject(String::new()).expect_err("empty");
        assert_eq!(e.to_string(), "subject: required");
        let e = required("username", "x".repeat(257), 256).expect_err("long");
        assert_eq!(e.to_string(), "username: at most 256 characters");
        assert_eq!(
            connection_id("nope").expect_err("uuid").to_string(),
            "connection_id: not a connection id (UUID)"
        );
        assert_eq!(
            connection_id("").expect_err("empty").to_string(),
            "connection_id: required"
        );
        assert!(scopes(vec!["a b".into()]).is_err());
        assert!(optional_text("x", "a\u{0}".into(), 10).is_err());
        assert_eq!(optional_text("x", String::new(), 10).expect("ok"), None);
        assert_eq!(subject_filter(String::new()).expect("ok"), None);
        assert!(
            credits(-1.0)
                .expect_err("negative")
                .to_string()
                .starts_with("credits:")
        );
    }
}
