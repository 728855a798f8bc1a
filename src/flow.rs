//! Sans-IO OAuth2 logic: what to send and how to read the answer, with time
//! passed in. Nothing here touches the network, the database or the clock, so
//! every branch is unit-tested.

pub mod authorize;
pub mod expiry;
pub mod state;
pub mod token_request;
pub mod token_response;

pub use authorize::{AuthorizeParams, authorization_url};
pub use expiry::{Freshness, freshness};
pub use state::{StateToken, hash_state, pkce_challenge};
pub use token_request::{Grant, OutboundRequest, token_request};
pub use token_response::{OAuthError, ProviderFailure, TokenSet, parse_token_response};
