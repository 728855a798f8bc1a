//! Sans-IO OAuth2 logic: what to send, how to read the answer, and every
//! decision that depends on time, with time passed in. Nothing here touches
//! the network, the database or the clock, so every branch is unit-tested.

pub(crate) mod answer;
pub(crate) mod authorize;
pub(crate) mod callback;
pub(crate) mod expiry;
pub(crate) mod liveness;
pub(crate) mod refresh;
pub(crate) mod revocation;
pub(crate) mod schedule;
pub(crate) mod state;
pub(crate) mod token_request;
pub(crate) mod token_response;
pub(crate) mod usage;

pub(crate) use authorize::{AuthorizeParams, authorization_url};
pub(crate) use callback::StateProblem;
pub(crate) use expiry::{Freshness, freshness};
pub(crate) use state::{StateToken, hash_state, pkce_challenge};
pub(crate) use token_request::{Grant, OutboundRequest, token_request};
pub(crate) use token_response::{Classify, ProviderFailure, TokenSet, parse_token_response};
