//! What one caller may do. Every rule defaults to everything (the service's
//! behaviour without a policy) and is narrowed in the caller's `[[callers]]`
//! entry; a refusal names the rule, so an operator knows which line to
//! change.

use std::collections::BTreeSet;

/// A caller's policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Provider ids it may use; `None`: all.
    pub providers: Option<BTreeSet<String>>,
    /// RPC method names it may call (`GetAccessToken`); `None`: all.
    pub rpcs: Option<BTreeSet<String>>,
    /// Redirect URIs it may use (a subset of each provider's); `None`: all.
    pub redirect_uris: Option<BTreeSet<String>>,
    /// The most scopes it may request; `None`: any.
    pub scopes: Option<BTreeSet<String>>,
    /// Whether it may use SignInWithPassword (where the provider allows it).
    pub allow_password_grant: bool,
    /// Most credits in one RecordUsage; `None`: no limit.
    pub max_credits_per_call: Option<f64>,
    /// Most credits reported in any 24 hours; `None`: no limit.
    pub max_credits_per_day: Option<f64>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            providers: None,
            rpcs: None,
            redirect_uris: None,
            scopes: None,
            allow_password_grant: true,
            max_credits_per_call: None,
            max_credits_per_day: None,
        }
    }
}

/// A refusal: the rule (its config key) and what it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The config key of the rule.
    pub rule: &'static str,
    /// What was asked, in words.
    pub detail: String,
}

fn deny(rule: &'static str, detail: String) -> Result<(), Denied> {
    Err(Denied { rule, detail })
}

impl Policy {
    /// May it call `method`?
    pub fn rpc(&self, method: &str) -> Result<(), Denied> {
        match &self.rpcs {
            Some(allowed) if !allowed.contains(method) => {
                deny("rpcs", format!("{method} is not among this caller's rpcs"))
            }
            _ => Ok(()),
        }
    }

    /// May it use provider `id`?
    pub fn provider(&self, id: &str) -> Result<(), Denied> {
        match &self.providers {
            Some(allowed) if !allowed.contains(id) => deny(
                "providers",
                format!("provider {id:?} is not among this caller's providers"),
            ),
            _ => Ok(()),
        }
    }

    /// May it send users back to `uri`?
    pub fn redirect_uri(&self, uri: &str) -> Result<(), Denied> {
        match &self.redirect_uris {
            Some(allowed) if !allowed.contains(uri) => deny(
                "redirect_uris",
                format!("redirect URI {uri:?} is not among this caller's redirect_uris"),
            ),
            _ => Ok(()),
        }
    }

    /// May it request all of `requested` (after the provider's defaults)?
    pub fn scopes<'a>(&self, requested: impl IntoIterator<Item = &'a str>) -> Result<(), Denied> {
        let Some(allowed) = &self.scopes else {
            return Ok(());
        };
        let beyond: Vec<&str> = requested
            .into_iter()
            .filter(|s| !allowed.contains(*s))
            .collect();
        if beyond.is_empty() {
            Ok(())
        } else {
            deny(
                "scopes",
                format!("scopes {beyond:?} are beyond this caller's scopes"),
            )
        }
    }

    /// May it sign users in with their password?
    pub fn password_grant(&self) -> Result<(), Denied> {
        if self.allow_password_grant {
            Ok(())
        } else {
            deny(
                "allow_password_grant",
                "this caller may not use the password grant".into(),
            )
        }
    }

    /// May one call report `credits`?
    pub fn credits_per_call(&self, credits: f64) -> Result<(), Denied> {
        match self.max_credits_per_call {
            Some(max) if credits > max => deny(
                "max_credits_per_call",
                format!("{credits} credits is more than this caller's {max} per call"),
            ),
            _ => Ok(()),
        }
    }

    /// May it report `credits` more, having reported `used` in the last 24 hours?
    pub fn credits_per_day(&self, used: f64, credits: f64) -> Result<(), Denied> {
        match self.max_credits_per_day {
            Some(max) if used + credits > max => deny(
                "max_credits_per_day",
                format!(
                    "{credits} credits more would make {} in 24 hours, beyond this caller's {max}",
                    used + credits
                ),
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> Option<BTreeSet<String>> {
        Some(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn the_default_allows_everything() {
        let p = Policy::default();
        assert_eq!(p.rpc("GetAccessToken"), Ok(()));
        assert_eq!(p.provider("ares"), Ok(()));
        assert_eq!(p.redirect_uri("https://x/cb"), Ok(()));
        assert_eq!(p.scopes(["a", "b"]), Ok(()));
        assert_eq!(p.password_grant(), Ok(()));
        assert_eq!(p.credits_per_call(1e12), Ok(()));
        assert_eq!(p.credits_per_day(1e12, 1e12), Ok(()));
    }

    #[test]
    fn each_rule_refuses_by_its_name() {
        let p = Policy {
            providers: set(&["ares"]),
            rpcs: set(&["GetAccessToken"]),
            redirect_uris: set(&["https://x/cb"]),
            scopes: set(&["read"]),
            allow_password_grant: false,
            max_credits_per_call: Some(5.0),
            max_credits_per_day: Some(10.0),
        };
        assert_eq!(p.rpc("GetAccessToken"), Ok(()));
        assert_eq!(p.rpc("RecordUsage").expect_err("denied").rule, "rpcs");
        assert_eq!(p.provider("askara").expect_err("denied").rule, "providers");
        assert_eq!(
            p.redirect_uri("https://evil/cb").expect_err("denied").rule,
            "redirect_uris"
        );
        assert_eq!(p.scopes(["read"]), Ok(()));
        let denied = p.scopes(["read", "write"]).expect_err("denied");
        assert_eq!(denied.rule, "scopes");
        assert!(denied.detail.contains("write") && !denied.detail.contains("read\""));
        assert_eq!(
            p.password_grant().expect_err("denied").rule,
            "allow_password_grant"
        );
        assert_eq!(p.credits_per_call(5.0), Ok(()));
        assert_eq!(
            p.credits_per_call(5.5).expect_err("denied").rule,
            "max_credits_per_call"
        );
        assert_eq!(p.credits_per_day(6.0, 4.0), Ok(()));
        assert_eq!(
            p.credits_per_day(6.0, 4.5).expect_err("denied").rule,
            "max_credits_per_day"
        );
    }
}
