//! Request field validation: every field has a length limit and a message
//! naming it.

use crate::error::{Error, Result};

/// A required identifier-like text field.
pub(super) fn required(field: &'static str, value: String, max: usize) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(field, "required"));
    }
    optional(field, value, max).map(|v| v.unwrap_or_default())
}

/// An optional text field: empty means absent.
pub(super) fn optional(field: &'static str, value: String, max: usize) -> Result<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(Some(value))
}

/// A connection id: a UUID.
pub(super) fn connection_id(value: String) -> Result<String> {
    let value = required("connection_id", value, 36)?;
    uuid::Uuid::parse_str(&value)
        .map(|u| u.to_string())
        .map_err(|_| Error::invalid("connection_id", "not a connection id (UUID)"))
}

/// Scopes: at most 32, each 1 to 128 characters without spaces.
pub(super) fn scopes(values: Vec<String>) -> Result<Vec<String>> {
    if values.len() > 32 {
        return Err(Error::invalid("scopes", "at most 32 scopes"));
    }
    for scope in &values {
        if scope.is_empty()
            || scope.len() > 128
            || scope.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(
                "scopes",
                "each scope is 1 to 128 characters without spaces",
            ));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field() {
        let e = required("subject", String::new(), 10).expect_err("empty");
        assert_eq!(e.to_string(), "subject: required");
        let e = required("subject", "x".repeat(11), 10).expect_err("long");
        assert_eq!(e.to_string(), "subject: at most 10 characters");
        assert!(connection_id("nope".into()).is_err());
        assert!(scopes(vec!["a b".into()]).is_err());
        assert!(optional("x", "a\u{0}".into(), 10).is_err());
        assert_eq!(optional("x", String::new(), 10).expect("ok"), None);
    }
}
