//! BeginAuth, CompleteAuth, SignInWithPassword handlers.

use std::collections::BTreeMap;

use super::{convert, validate};
use crate::{
    broker::{BeginAuth, Broker, Callback, CallbackOutcome, PasswordSignIn},
    domain::{AuthorizationCode, Caller, Password, Policy},
    error::{Error, Result},
    pb::{self, complete_auth_response::Outcome},
    secret::Secret,
};

pub(super) async fn begin(
    broker: &Broker,
    caller: &Caller,
    policy: &Policy,
    req: pb::BeginAuthRequest,
) -> Result<pb::BeginAuthResponse> {
    let request = BeginAuth {
        provider: validate::provider(req.provider)?,
        subject: validate::subject(req.subject)?,
        redirect_uri: validate::redirect_uri(req.redirect_uri)?,
        scopes: validate::scopes(req.scopes)?,
        sign_up: req.sign_up,
        labels: validate::labels("labels", req.labels)?,
        connection_id: validate::connection_id_option(req.connection_id)?,
    };
    let begun = broker.begin_auth(caller, policy, request).await?;
    Ok(pb::BeginAuthResponse {
        authorization_url: begun.authorization_url,
        state: begun.state.expose().to_owned(),
        expires_at: Some(convert::timestamp(begun.expires_at)),
    })
}

pub(super) async fn complete(
    broker: &Broker,
    caller: &Caller,
    policy: &Policy,
    req: pb::CompleteAuthRequest,
) -> Result<pb::CompleteAuthResponse> {
    if req.params.len() > 32 {
        return Err(Error::invalid("params", "at most 32 parameters"));
    }
    let mut params = BTreeMap::new();
    for (k, v) in req.params {
        if k.is_empty() || k.len() > 64 || v.len() > 2048 {
            return Err(Error::invalid(
                "params",
                "keys are 1 to 64 characters, values at most 2048",
            ));
        }
        params.insert(k, v);
    }
    let callback = Callback {
        state: Secret::new(validate::required("state", req.state, 128)?),
        code: validate::optional_text("code", req.code, 2048)?.map(AuthorizationCode::new),
        error: validate::optional_text("error", req.error, 128)?,
        error_description: validate::optional_text(
            "error_description",
            req.error_description,
            1024,
        )?,
        params,
    };
    if callback.code.is_none() && callback.error.is_none() && callback.params.is_empty() {
        return Err(Error::invalid(
            "code",
            "required unless the callback has an error or other parameters",
        ));
    }
    let outcome = match broker.complete_auth(caller, policy, callback).await? {
        CallbackOutcome::Connected(connection) => {
            Outcome::Connection(convert::connection(*connection))
        }
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
    policy: &Policy,
    req: pb::SignInWithPasswordRequest,
) -> Result<pb::SignInWithPasswordResponse> {
    let provider = validate::provider(req.provider)?;
    policy
        .password_grant()
        .and_then(|()| policy.provider(provider.as_str()))
        .map_err(|denied| Error::denied(caller, denied))?;
    let subject = validate::subject(req.subject)?;
    let username = validate::required("username", req.username, 256)?;
    if req.password.is_empty() {
        return Err(Error::invalid("password", "required"));
    }
    if req.password.len() > 1024 {
        return Err(Error::invalid("password", "at most 1024 bytes"));
    }
    let request = PasswordSignIn {
        provider,
        subject,
        username,
        password: Password::new(req.password),
    };
    let connection = broker.sign_in_with_password(caller, request).await?;
    Ok(pb::SignInWithPasswordResponse {
        connection: Some(convert::connection(connection)),
    })
}
