//! BeginAuth, CompleteAuth and SignInWithPassword.

use std::collections::BTreeMap;

use super::{Broker, Caller, sealing};
use crate::{
    error::{Error, Result},
    flow::{self, AuthorizeParams, Grant, StateToken},
    secret::Secret,
    store::{self, connections::ConnectionRow, states},
};

/// A validated BeginAuth request.
pub struct BeginAuth {
    /// Provider id.
    pub provider: String,
    /// The caller's end user.
    pub subject: String,
    /// Requested redirect URI, or `None` for the only registered one.
    pub redirect_uri: Option<String>,
    /// Requested scopes; empty for the provider default.
    pub scopes: Vec<String>,
    /// Sign-up link instead of login.
    pub sign_up: bool,
}

/// What BeginAuth returns.
pub struct Begun {
    /// Where to send the end user.
    pub authorization_url: String,
    /// The state value (also inside the URL).
    pub state: Secret,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A validated CompleteAuth request.
pub struct Callback {
    /// The state value.
    pub state: Secret,
    /// The code, when the provider sent one.
    pub code: Option<Secret>,
    /// The `error` parameter, when present.
    pub error: Option<String>,
    /// The `error_description` parameter.
    pub error_description: Option<String>,
    /// Every other callback parameter.
    pub params: BTreeMap<String, String>,
}

/// What a callback amounted to.
pub enum CallbackOutcome {
    /// A stored connection.
    Connected(Box<ConnectionRow>),
    /// A new provider account awaits email verification.
    PendingVerification {
        /// Its id at the provider.
        provider_user_id: String,
    },
    /// The user or provider refused.
    Denied {
        /// The error code.
        error: String,
        /// The description, possibly empty.
        error_description: String,
    },
}

impl Broker {
    /// Stores a new single-use state and returns the authorization URL.
    pub async fn begin_auth(&self, caller: &Caller, req: BeginAuth) -> Result<Begun> {
        let provider = self.provider(&req.provider)?;
        let redirect_uri = match req.redirect_uri {
            Some(uri) if provider.redirect_uris.contains(&uri) => uri,
            Some(_) => {
                return Err(Error::invalid(
                    "redirect_uri",
                    format!(
                        "not registered for provider {:?}; it must equal a configured redirect_uris entry exactly",
                        provider.id
                    ),
                ));
            }
            None => match provider.redirect_uris.as_slice() {
                [only] => only.clone(),
                _ => {
                    return Err(Error::invalid(
                        "redirect_uri",
                        format!(
                            "required: provider {:?} has several redirect URIs",
                            provider.id
                        ),
                    ));
                }
            },
        };
        if req.sign_up && provider.profile.sign_up_response_type.is_none() {
            return Err(Error::invalid(
                "sign_up",
                format!("provider {:?} has no sign-up links", provider.id),
            ));
        }
        let scopes = if req.scopes.is_empty() {
            provider.profile.default_scopes.clone()
        } else {
            req.scopes
        };

        let state = StateToken::generate().0;
        let state_hash = flow::hash_state(state.expose());
        let verifier = provider.profile.pkce.then(flow::state::pkce_verifier);
        let challenge = verifier.as_ref().map(flow::pkce_challenge);
        let authorization_url = flow::authorization_url(
            &provider.profile,
            &AuthorizeParams {
                client_id: &provider.client_id,
                redirect_uri: &redirect_uri,
                scopes: &scopes,
                state: state.expose(),
                sign_up: req.sign_up,
                code_challenge: challenge.as_deref(),
            },
        )
        .map_err(|e| Error::FailedPrecondition(format!("provider {:?}: {e}", provider.id)))?;

        let now = store::now();
        let expires_at = now + self.inner.state_ttl.as_secs() as i64;
        let pkce_verifier = verifier.map(|v| {
            self.inner
                .key
                .seal(v.expose(), sealing::state_slot(&state_hash))
        });
        states::insert(
            &self.inner.db,
            states::AuthState {
                state_hash,
                caller: caller.0.clone(),
                provider: provider.id.clone(),
                subject: req.subject,
                redirect_uri,
                scopes: scopes.join(" "),
                sign_up: req.sign_up,
                pkce_verifier,
                expires_at,
                created_at: now,
            },
        )
        .await?;
        Ok(Begun {
            authorization_url,
            state,
            expires_at,
        })
    }

    /// Consumes the state and turns the callback into an outcome. No request
    /// reaches the provider unless the state is valid for this caller.
    pub async fn complete_auth(&self, caller: &Caller, cb: Callback) -> Result<CallbackOutcome> {
        let state_hash = flow::hash_state(cb.state.expose());
        let state = match states::take(&self.inner.db, &state_hash, &caller.0, store::now()).await?
        {
            states::Taken::Valid(state) => state,
            states::Taken::Unknown => {
                return Err(Error::FailedPrecondition(
                    "state: unknown or already used".into(),
                ));
            }
            states::Taken::Expired => {
                return Err(Error::FailedPrecondition("state: expired".into()));
            }
            states::Taken::OtherCaller => {
                return Err(Error::FailedPrecondition(
                    "state: begun by another caller".into(),
                ));
            }
        };
        let provider = self.provider_of_row(&state.provider)?;

        if let Some(error) = cb.error {
            tracing::info!(provider = %provider.id, %error, "authorization denied");
            return Ok(CallbackOutcome::Denied {
                error,
                error_description: cb.error_description.unwrap_or_default(),
            });
        }
        let Some(code) = cb.code else {
            let pending = provider
                .profile
                .pending_verification_param
                .as_ref()
                .and_then(|param| cb.params.get(param))
                .filter(|id| !id.is_empty());
            return match pending {
                Some(id) => Ok(CallbackOutcome::PendingVerification {
                    provider_user_id: id.clone(),
                }),
                None => Err(Error::invalid(
                    "code",
                    "the callback carries neither a code, an error nor a pending verification",
                )),
            };
        };

        let verifier = state
            .pkce_verifier
            .as_deref()
            .map(|sealed| {
                sealing::open(
                    &self.inner.key,
                    sealed,
                    sealing::state_slot(&state.state_hash),
                )
            })
            .transpose()?;
        let request = flow::token_request(
            &provider.profile,
            &provider.client_id,
            &provider.client_secret,
            &Grant::AuthorizationCode {
                code: &code,
                redirect_uri: &state.redirect_uri,
                code_verifier: verifier.as_ref(),
            },
        );
        let tokens = self
            .exchange(&provider.id, "code exchange", &request, &code)
            .await?;
        let row = self
            .connect_account(
                caller,
                &provider,
                &state.subject,
                &state.redirect_uri,
                &state.scopes,
                tokens,
            )
            .await?;
        Ok(CallbackOutcome::Connected(Box::new(row)))
    }

    /// Connects with the resource owner password grant, where allowed.
    pub async fn sign_in_with_password(
        &self,
        caller: &Caller,
        provider_id: &str,
        subject: &str,
        username: &str,
        password: &Secret,
    ) -> Result<ConnectionRow> {
        let provider = self.provider(provider_id)?;
        if !provider.profile.password_grant || !provider.allow_password_grant {
            return Err(Error::FailedPrecondition(format!(
                "provider {:?} does not allow the password grant (needs a provider that offers it and allow_password_grant = true)",
                provider.id
            )));
        }
        let request = flow::token_request(
            &provider.profile,
            &provider.client_id,
            &provider.client_secret,
            &Grant::Password { username, password },
        );
        let tokens = self
            .exchange(&provider.id, "password grant", &request, password)
            .await?;
        let redirect_uri = provider.redirect_uris.first().cloned().unwrap_or_default();
        let scopes = provider.profile.default_scopes.join(" ");
        self.connect_account(caller, &provider, subject, &redirect_uri, &scopes, tokens)
            .await
    }
}
