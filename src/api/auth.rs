//! BeginAuth, CompleteAuth, SignInWithPassword handlers.

use tonic::Status;

use super::{convert, validate};
use crate::{
    broker::{BeginAuth, Broker, Callback, CallbackOutcome, Caller},
    pb::{self, complete_auth_response::Outcome},
    secret::Secret,
};

pub(super) async fn begin(
    broker: &Broker,
    caller: &Caller,
    req: pb::BeginAuthRequest,
) -> Result<pb::BeginAuthResponse, Status> {
    let request = BeginAuth {
        provider: validate::required("provider", req.provider, 64)?,
        subject: validate::required("subject", req.subject, 256)?,
        redirect_uri: validate::optional("redirect_uri", req.redirect_uri, 2048)?,
        scopes: validate::scopes(req.scopes)?,
        sign_up: req.sign_up,
    };
    let begun = broker.begin_auth(caller, request).await?;
    Ok(pb::BeginAuthResponse {
        authorization_url: begun.authorization_url,
        state: begun.state.expose().to_owned(),
        expires_at: Some(convert::timestamp(begun.expires_at)),
    })
}

pub(super) async fn complete(
    broker: &Broker,
    caller: &Caller,
    req: pb::CompleteAuthRequest,
) -> Result<pb::CompleteAuthResponse, Status> {
    if req.params.len() > 32 {
        return Err(crate::error::Error::invalid("params", "at most 32 parameters").into());
    }
    let mut params = std::collections::BTreeMap::new();
    for (k, v) in req.params {
        if k.is_empty() || k.len() > 64 || v.len() > 2048 {
            return Err(crate::error::Error::invalid(
                "params",
                "keys are 1 to 64 characters, values at most 2048",
            )
            .into());
        }
        params.insert(k, v);
    }
    let callback = Callback {
        state: Secret::new(validate::required("state", req.state, 128)?),
        code: validate::optional("code", req.code, 2048)?.map(Secret::new),
        error: validate::optional("error", req.error, 128)?,
        error_description: validate::optional("error_description", req.error_description, 1024)?,
        params,
    };
    if callback.code.is_none() && callback.error.is_none() && callback.params.is_empty() {
        return Err(crate::error::Error::invalid(
            "code",
            "required unless the callback has an error or other parameters",
        )
        .into());
    }
    let outcome = match broker.complete_auth(caller, callback).await? {
        CallbackOutcome::Connected(row) => Outcome::Connection(convert::connection(*row)),
        CallbackOutcome::PendingVerification { provider_user_id } => {
            Outcome::PendingVerification(pb::PendingVerification { provider_user_id })
        }
        CallbackOutcome::Denied {
            error,
            error_description,
        } => Outcome::Denied(pb::Denied {
            error,
            error_description,
        }),
    };
    Ok(pb::CompleteAuthResponse {
        outcome: Some(outcome),
    })
}

pub(super) async fn password(
    broker: &Broker,
    caller: &Caller,
    req: pb::SignInWithPasswordRequest,
) -> Result<pb::SignInWithPasswordResponse, Status> {
    let provider = validate::required("provider", req.provider, 64)?;
    let subject = validate::required("subject", req.subject, 256)?;
    let username = validate::required("username", req.username, 256)?;
    if req.password.is_empty() {
        return Err(crate::error::Error::invalid("password", "required").into());
    }
    if req.password.len() > 1024 {
        return Err(crate::error::Error::invalid("password", "at most 1024 bytes").into());
    }
    let password = Secret::new(req.password);
    let row = broker
        .sign_in_with_password(caller, &provider, &subject, &username, &password)
        .await?;
    Ok(pb::SignInWithPasswordResponse {
        connection: Some(convert::connection(row)),
    })
}
