//! Connecting accounts: BeginAuth stores a single-use state and builds the
//! authorization URL; CompleteAuth consumes it and turns the callback into a
//! connection, a pending verification or a refusal; SignInWithPassword uses
//! the password grant where allowed.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;

use super::{
    account::{Accounts, Owner},
    openid::IdTokenCheck,
    provider_client::ProviderClient,
    registry::Providers,
    vault::Vault,
};
use crate::{
    clock::SharedClock,
    domain::{
        AuthorizationCode, Caller, Connection, ConnectionId, Labels, Password, Policy, ProviderId,
        RedirectUri, Scopes, Subject,
    },
    error::{Error, Result, Step},
    flow::{
        self, AuthorizeParams, Grant, StateProblem, StateToken,
        callback::{
            CallbackKind, CallbackParams, StateCheck, check_issuer, check_state, classify_callback,
        },
    },
    providers::ProviderSetting,
    secret::Secret,
    store::states::{self, PendingAuth},
};

/// A parsed BeginAuth request.
pub(crate) struct BeginAuth {
    /// Provider id.
    pub(crate) provider: ProviderId,
    /// The caller's end user.
    pub(crate) subject: Subject,
    /// Requested redirect URI, or `None` for the only registered one.
    pub(crate) redirect_uri: Option<RedirectUri>,
    /// Requested scopes; empty for the provider default.
    pub(crate) scopes: Scopes,
    /// Sign-up link instead of login.
    pub(crate) sign_up: bool,
    /// Labels for the connection.
    pub(crate) labels: Labels,
    /// Reconnect this connection of the caller in place.
    pub(crate) connection_id: Option<ConnectionId>,
}

/// What BeginAuth returns.
pub(crate) struct Begun {
    /// Where to send the end user.
    pub(crate) authorization_url: String,
    /// The state value (also inside the URL).
    pub(crate) state: Secret,
    /// Unix seconds.
    pub(crate) expires_at: i64,
}

/// A parsed CompleteAuth request.
pub(crate) struct Callback {
    /// The state value.
    pub(crate) state: Secret,
    /// The code, when the provider sent one.
    pub(crate) code: Option<AuthorizationCode>,
    /// The `error` parameter, when present.
    pub(crate) error: Option<String>,
    /// The `error_description` parameter.
    pub(crate) error_description: Option<String>,
    /// Every other callback parameter.
    pub(crate) params: BTreeMap<String, String>,
}

/// What a callback amounted to.
pub(crate) enum CallbackOutcome {
    /// A stored connection.
    Connected(Box<Connection>),
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

/// A parsed SignInWithPassword request.
pub(crate) struct PasswordSignIn {
    /// Provider id.
    pub(crate) provider: ProviderId,
    /// The caller's end user.
    pub(crate) subject: Subject,
    /// The end user's login at the provider.
    pub(crate) username: String,
    /// Their password.
    pub(crate) password: Password,
}

/// Runs the authorization flows.
pub(crate) struct Connector {
    pub(crate) db: DatabaseConnection,
    pub(crate) vault: Arc<Vault>,
    pub(crate) client: Arc<ProviderClient>,
    pub(crate) providers: Arc<Providers>,
    pub(crate) accounts: Accounts,
    pub(crate) clock: SharedClock,
    /// Lifetime of a state.
    pub(crate) state_ttl: Duration,
}

impl Connector {
    /// Stores a new single-use state and returns the authorization URL.
    pub(crate) async fn begin(
        &self,
        caller: &Caller,
        policy: &Policy,
        req: BeginAuth,
    ) -> Result<Begun> {
        let provider = self.providers.requested(&req.provider)?;
        let denied = |denied| Error::denied(caller, denied);
        policy.provider(provider.id.as_str()).map_err(denied)?;
        if let Some(id) = req.connection_id {
            self.reconnectable(caller, id, &provider, &req.subject)
                .await?;
        }
        let redirect_uri = match req.redirect_uri {
            Some(uri) if provider.redirect_uris.contains(&uri) => uri,
            Some(_) => {
                return Err(Error::invalid(
                    "redirect_uri",
                    format!(
                        "not registered for provider {:?}; it must equal a configured redirect_uris entry exactly",
                        provider.id.as_str()
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
                            provider.id.as_str()
                        ),
                    ));
                }
            },
        };
        if req.sign_up && provider.profile.sign_up_response_type.is_none() {
            return Err(Error::invalid(
                "sign_up",
                format!("provider {:?} has no sign-up links", provider.id.as_str()),
            ));
        }
        let mut scopes = if req.scopes.is_empty() {
            Scopes::trusted(provider.profile.default_scopes.clone())
        } else {
            req.scopes
        };
        // After the defaults: what the user will be asked to grant.
        policy.redirect_uri(redirect_uri.as_str()).map_err(denied)?;
        policy
            .scopes(scopes.as_slice().iter().map(String::as_str))
            .map_err(denied)?;
        // OpenID Connect needs `openid` (OIDC Core 3.1.2.1); it asks for
        // the user's identifier only, so no caller policy has to list it.
        if provider.oidc.is_some() && !scopes.as_slice().iter().any(|s| s == "openid") {
            let mut with_openid = vec!["openid".to_owned()];
            with_openid.extend(scopes.as_slice().iter().cloned());
            scopes = Scopes::trusted(with_openid);
        }

        let state = StateToken::generate().0;
        let state_hash = flow::hash_state(state.expose());
        let verifier = provider.profile.pkce.then(flow::state::pkce_verifier);
        let challenge = verifier.as_ref().map(flow::pkce_challenge);
        let nonce = provider
            .oidc
            .is_some()
            .then(|| crate::oidc::nonce(state.expose()));
        let authorization_url = flow::authorization_url(
            &provider.profile,
            &AuthorizeParams {
                client_id: &provider.client_id,
                redirect_uri: redirect_uri.as_str(),
                scopes: scopes.as_slice(),
                state: state.expose(),
                sign_up: req.sign_up,
                code_challenge: challenge.as_deref(),
                nonce: nonce.as_deref(),
            },
        )
        .map_err(|e| Error::internal(anyhow::anyhow!("provider {}: {e}", provider.id)))?;

        let now = self.clock.now();
        let expires_at = now + self.state_ttl.as_secs() as i64;
        let pkce_verifier = verifier.map(|v| self.vault.seal_verifier(&state_hash, &v));
        states::insert(
            &self.db,
            PendingAuth {
                state_hash,
                caller: caller.clone(),
                provider: provider.id.clone(),
                subject: req.subject,
                redirect_uri,
                scopes,
                sign_up: req.sign_up,
                pkce_verifier,
                labels: req.labels,
                connection_id: req.connection_id,
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
    pub(crate) async fn complete(
        &self,
        caller: &Caller,
        policy: &Policy,
        cb: Callback,
    ) -> Result<CallbackOutcome> {
        let state = self
            .take_state(caller, &flow::hash_state(cb.state.expose()))
            .await?;
        let provider = self.providers.stored(&state.provider)?;
        // The policy may have narrowed since BeginAuth: the state is spent.
        policy
            .provider(provider.id.as_str())
            .map_err(|denied| Error::denied(caller, denied))?;
        // RFC 9207: an answer from another issuer is a mix-up; the state is
        // spent and nothing is sent.
        check_issuer(
            provider.issuer.as_deref(),
            provider.require_iss,
            cb.params.get("iss").map(String::as_str),
        )
        .map_err(Error::StateInvalid)?;
        let kind = classify_callback(&CallbackParams {
            error: cb.error.as_deref(),
            has_code: cb.code.is_some(),
            params: &cb.params,
            pending_param: provider.profile.pending_verification_param.as_deref(),
        });
        let code = match (kind, cb.code) {
            (CallbackKind::Denied, _) => {
                let error = cb.error.unwrap_or_default();
                tracing::info!(provider = %provider.id, %error, "authorization denied");
                return Ok(CallbackOutcome::Denied {
                    error,
                    error_description: cb.error_description.unwrap_or_default(),
                });
            }
            (CallbackKind::PendingVerification(provider_user_id), _) => {
                return Ok(CallbackOutcome::PendingVerification { provider_user_id });
            }
            (CallbackKind::Code, Some(code)) => code,
            (CallbackKind::Code | CallbackKind::Incomplete, _) => {
                return Err(Error::invalid(
                    "code",
                    "the callback carries neither a code, an error nor a pending verification",
                ));
            }
        };
        let verifier = state
            .pkce_verifier
            .as_ref()
            .map(|sealed| self.vault.open_verifier(&state.state_hash, sealed))
            .transpose()?;
        let grant = Grant::AuthorizationCode {
            code: &code,
            redirect_uri: state.redirect_uri.as_str(),
            code_verifier: verifier.as_ref(),
        };
        let tokens = self
            .client
            .grant(&provider, &grant, Step::CodeExchange)
            .await?;
        let nonce = crate::oidc::nonce(cb.state.expose());
        let account = self
            .id_token_subject(&provider, &tokens, Some(&nonce))
            .await?;
        let owner = Owner {
            caller,
            subject: &state.subject,
            redirect_uri: &state.redirect_uri,
            requested_scopes: &state.scopes,
            labels: &state.labels,
            reconnect: state.connection_id,
        };
        let connection = self
            .accounts
            .store(&provider, owner, tokens, account)
            .await?;
        Ok(CallbackOutcome::Connected(Box::new(connection)))
    }

    /// Checks that `id` is a connection of `caller` that a new flow for
    /// `provider` and `subject` may reconnect: not revoked, same provider
    /// and end user.
    async fn reconnectable(
        &self,
        caller: &Caller,
        id: ConnectionId,
        provider: &ProviderSetting,
        subject: &Subject,
    ) -> Result<()> {
        let existing = crate::store::connections::find(&self.db, caller, id)
            .await?
            .ok_or(Error::ConnectionNotFound { id })?;
        if existing.status == crate::domain::ConnectionStatus::Revoked {
            return Err(Error::Revoked {
                id,
                provider: existing.provider,
            });
        }
        if existing.provider != provider.id {
            return Err(Error::invalid(
                "connection_id",
                format!(
                    "the connection is to provider {:?}, not {:?}",
                    existing.provider.as_str(),
                    provider.id.as_str()
                ),
            ));
        }
        // Without an account id from the provider, nothing could tell
        // another account's tokens from the connection's own.
        if provider.oidc.is_none() && provider.profile.userinfo_url.is_none() {
            return Err(Error::ProviderUnsupported {
                provider: provider.id.clone(),
                what: "names no account (no user endpoint), so a connection cannot be reconnected in place: connect anew",
            });
        }
        if &existing.subject != subject {
            return Err(Error::invalid(
                "connection_id",
                "the connection belongs to another subject",
            ));
        }
        Ok(())
    }

    /// Takes the state with this hash for `caller`: another caller's state is
    /// left untouched and answered exactly like one that does not exist (the
    /// answer must not tell a caller that it is live); an expired one is
    /// consumed and refused.
    async fn take_state(&self, caller: &Caller, state_hash: &str) -> Result<PendingAuth> {
        let state = states::find(&self.db, state_hash)
            .await?
            .ok_or(Error::StateInvalid(StateProblem::Unknown))?;
        let check = check_state(
            self.clock.now(),
            state.caller.as_str(),
            caller.as_str(),
            state.expires_at,
        );
        if check == StateCheck::Foreign {
            tracing::warn!(
                caller = caller.as_str(),
                provider = %state.provider,
                "CompleteAuth with a state another caller began; answered as unknown"
            );
            return Err(Error::StateInvalid(StateProblem::Unknown));
        }
        // A provider that cannot serve now (an OpenID issuer not discovered
        // yet) is refused before the single-use state is spent, so the
        // caller's retry can still complete the flow.
        if check == StateCheck::Usable {
            self.providers.stored(&state.provider)?;
        }
        if !states::delete(&self.db, state_hash).await? {
            return Err(Error::StateInvalid(StateProblem::Unknown));
        }
        if check == StateCheck::Expired {
            return Err(Error::StateInvalid(StateProblem::Expired));
        }
        Ok(state)
    }

    /// Connects with the resource owner password grant, where allowed.
    pub(crate) async fn sign_in_with_password(
        &self,
        caller: &Caller,
        req: PasswordSignIn,
    ) -> Result<Connection> {
        let provider = self.providers.requested(&req.provider)?;
        if !provider.profile.password_grant || !provider.allow_password_grant {
            return Err(Error::ProviderUnsupported {
                provider: provider.id.clone(),
                what: "does not allow the password grant (needs a provider that offers it and allow_password_grant = true)",
            });
        }
        let grant = Grant::Password {
            username: &req.username,
            password: &req.password,
        };
        let tokens = self
            .client
            .grant(&provider, &grant, Step::PasswordGrant)
            .await?;
        let account = self.id_token_subject(&provider, &tokens, None).await?;
        let redirect_uri = provider
            .redirect_uris
            .first()
            .cloned()
            .unwrap_or_else(|| RedirectUri::trusted(""));
        let owner = Owner {
            caller,
            subject: &req.subject,
            redirect_uri: &redirect_uri,
            requested_scopes: &Scopes::trusted(provider.profile.default_scopes.clone()),
            labels: &Labels::default(),
            reconnect: None,
        };
        self.accounts.store(&provider, owner, tokens, account).await
    }

    /// The account an oidc provider's `id_token` names, checked; `None` for
    /// other kinds. A token that fails the check stores nothing.
    async fn id_token_subject(
        &self,
        provider: &ProviderSetting,
        tokens: &crate::flow::TokenSet,
        nonce: Option<&str>,
    ) -> Result<Option<String>> {
        let check = IdTokenCheck {
            nonce,
            subject: None,
            now: self.clock.now(),
        };
        let subject = self
            .client
            .id_token_subject(provider, tokens, check)
            .await
            .map_err(|e| Error::provider(&provider.id, Step::IdToken, e.into_failure()))?;
        if provider.oidc.is_some() && subject.is_none() {
            // The password grant: OIDC requires an id_token there too.
            return Err(Error::provider(
                &provider.id,
                Step::IdToken,
                crate::flow::ProviderFailure::Malformed {
                    http_status: None,
                    reason: "the token answer has no id_token".into(),
                },
            ));
        }
        Ok(subject)
    }
}
