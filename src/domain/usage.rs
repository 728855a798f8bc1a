//! What a usage report is made of: the caller's idempotency key, the usage
//! label and the number of credits.

use std::fmt;

use super::{ParseError, bounded_text};

/// Most credits one call may report.
const MAX_CREDITS: f64 = 1.0e12;

/// The caller's idempotency key: one provider report per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyKey(String);

impl IdempotencyKey {
    /// 1 to 128 characters, no control characters.
    pub(crate) fn parse(value: String) -> Result<Self, ParseError> {
        bounded_text(&value, 128)?;
        Ok(Self(value))
    }

    /// The key.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the usage was for, as the provider's `usage` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageLabel(String);

impl UsageLabel {
    /// 1 to 128 characters, no control characters.
    pub(crate) fn parse(value: String) -> Result<Self, ParseError> {
        bounded_text(&value, 128)?;
        Ok(Self(value))
    }

    /// The label.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A non-negative, finite number of credits, at most 1e12.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Credits(f64);

impl Credits {
    /// Checks the bounds.
    pub(crate) fn parse(value: f64) -> Result<Self, ParseError> {
        if !value.is_finite() {
            return Err(ParseError::new("must be a finite number"));
        }
        if value < 0.0 {
            return Err(ParseError::new("must not be negative"));
        }
        if value > MAX_CREDITS {
            return Err(ParseError::new("at most 1e12"));
        }
        Ok(Self(value))
    }

    /// The number.
    pub(crate) fn value(self) -> f64 {
        self.0
    }

    /// Whether it is a whole number (some providers take nothing else).
    pub(crate) fn is_whole(self) -> bool {
        self.0.fract() == 0.0
    }

    /// Whole credits go out as JSON integers, as in the provider's examples.
    pub(crate) fn to_json(self) -> serde_json::Value {
        if self.is_whole() && self.0 < 9.0e15 {
            serde_json::Value::from(self.0 as i64)
        } else {
            serde_json::Value::from(self.0)
        }
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_bounds() {
        assert_eq!(
            Credits::parse(f64::NAN).expect_err("invalid").0,
            "must be a finite number"
        );
        assert_eq!(
            Credits::parse(-1.0).expect_err("invalid").0,
            "must not be negative"
        );
        assert_eq!(Credits::parse(2e12).expect_err("invalid").0, "at most 1e12");
        assert_eq!(
            Credits::parse(3.0).expect("ok").to_json(),
            serde_json::json!(3)
        );
        assert_eq!(
            Credits::parse(0.5).expect("ok").to_json(),
            serde_json::json!(0.5)
        );
        assert!(!Credits::parse(0.5).expect("ok").is_whole());
    }

    #[test]
    fn keys_and_labels() {
        assert!(IdempotencyKey::parse("order-1".into()).is_ok());
        assert!(IdempotencyKey::parse("x".repeat(129)).is_err());
        assert!(UsageLabel::parse(String::new()).is_err());
    }
}

/// Where a usage ledger row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsageStatus {
    /// Claimed; the provider call is in flight.
    Pending,
    /// The provider confirmed.
    Succeeded,
    /// The provider refused (e.g. not enough credits); final.
    Rejected,
    /// The provider certainly did not record it; the same key may try again.
    Retryable,
    /// The provider may or may not have recorded it.
    Unknown,
}

impl UsageStatus {
    /// The stored form.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Rejected => "rejected",
            Self::Retryable => "retryable",
            Self::Unknown => "unknown",
        }
    }

    /// Reads the stored form; anything unrecognised is treated as unknown,
    /// the status that never reports twice.
    pub(crate) fn from_stored(text: &str) -> Self {
        match text {
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "rejected" => Self::Rejected,
            "retryable" => Self::Retryable,
            _ => Self::Unknown,
        }
    }
}
