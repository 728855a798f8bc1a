//! A client for authbroker, the service that holds a cluster's OAuth
//! connections: add this one dependency (no database, HTTP client or server
//! comes with it) and get
//!
//! - the generated gRPC client and messages ([`pb`]), connected with
//!   [`connect`] and a caller token;
//! - typed errors decoded from the `google.rpc.ErrorInfo` every error
//!   carries ([`Error`], [`pb::ErrorReason`]);
//! - a retry policy that waits what the server's `RetryInfo` says
//!   ([`RetryPolicy`]);
//! - a token source that caches an access token until it nears its expiry
//!   ([`TokenSource`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = authbroker_client::connect("http://authbroker:50051", Some("caller-token")).await?;
//! let tokens = authbroker_client::TokenSource::new(client, "019abf40-…");
//! let access_token = tokens.token().await?;
//! # Ok(()) }
//! ```

mod error;
mod pb_debug;
mod retry;
mod token;

use tonic::{
    metadata::AsciiMetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

pub use error::Error;
pub use retry::RetryPolicy;
pub use token::TokenSource;

/// The generated messages, enums and client of `authbroker.v1`.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("authbroker.v1");
}

/// The AuthBroker client with the caller's bearer token on every call.
pub type Client = pb::auth_broker_client::AuthBrokerClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer([redacted])")
    }
}

/// Why [`connect`] failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The address is not a URI like `http://authbroker:50051`.
    Address(String),
    /// The caller token cannot be sent as a header value.
    Token,
    /// The server could not be reached.
    Transport(tonic::transport::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address(address) => {
                write!(f, "{address:?} is not a URI like http://authbroker:50051")
            }
            Self::Token => f.write_str("the caller token is not a valid header value"),
            Self::Transport(e) => write!(f, "cannot reach authbroker: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Connects to authbroker at `address` (e.g. `http://authbroker:50051`),
/// sending `token` as the caller's bearer token on every call.
pub async fn connect(address: &str, token: Option<&str>) -> Result<Client, ConnectError> {
    let endpoint = Endpoint::from_shared(address.to_owned())
        .map_err(|_| ConnectError::Address(address.to_owned()))?;
    let bearer = token
        .map(|t| format!("Bearer {t}").parse::<AsciiMetadataValue>())
        .transpose()
        .map_err(|_| ConnectError::Token)?
        .map(|mut value| {
            // Never added to HTTP/2's header compression table.
            value.set_sensitive(true);
            value
        });
    let channel = endpoint.connect().await.map_err(ConnectError::Transport)?;
    Ok(pb::auth_broker_client::AuthBrokerClient::with_interceptor(
        channel,
        Bearer(bearer),
    ))
}
