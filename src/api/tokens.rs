//! GetAccessToken handler.

use super::{convert, validate};
use crate::{
    broker::Broker,
    domain::{Caller, Policy},
    error::{Error, Result},
    pb,
};

/// Default and ceiling of `min_valid_seconds`.
const DEFAULT_MIN_VALID_SECS: u32 = 60;
const MAX_MIN_VALID_SECS: u32 = 86_400;

/// `wait`: how long the call may wait for a refresh, from its deadline.
pub(super) async fn get(
    broker: &Broker,
    caller: &Caller,
    policy: &Policy,
    req: pb::GetAccessTokenRequest,
    wait: Option<std::time::Duration>,
) -> Result<pb::GetAccessTokenResponse> {
    let id = validate::connection_id(&req.connection_id)?;
    let min_valid = match req.min_valid_seconds {
        0 => DEFAULT_MIN_VALID_SECS,
        n if n > MAX_MIN_VALID_SECS => {
            return Err(Error::invalid(
                "min_valid_seconds",
                format!("at most {MAX_MIN_VALID_SECS}"),
            ));
        }
        n => n,
    };
    let required = validate::required_scopes(req.required_scopes)?;
    let token = broker
        .access_token(caller, id, i64::from(min_valid), req.force_refresh, wait)
        .await?;
    // A connection to a provider the caller may no longer use serves nothing.
    policy
        .provider(token.provider.as_str())
        .map_err(|denied| Error::denied(caller, denied))?;
    if let Some(required) = required {
        let missing: Vec<String> = required
            .as_slice()
            .iter()
            .filter(|s| !token.scopes.as_slice().contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Error::InsufficientScope { id, missing });
        }
    }
    Ok(pb::GetAccessTokenResponse {
        access_token: token.token.secret().to_owned(),
        token_type: token.token_type,
        expires_at: Some(convert::timestamp(token.expires_at)),
    })
}
