//! authbroker: connects the end users of calling services to external OAuth2
//! providers and acts on their behalf, so that no other service handles a
//! client secret, an authorization code or a refresh token.
//!
//! A request flows: `api` (gRPC handlers, the parser into `domain` types) ->
//! `broker` (the services) -> `flow` (sans-IO protocol logic and decisions)
//! with [`providers`] (the quirks) -> `http` (outbound calls) and `store`
//! (the database). `error` maps every failure to a gRPC status in one place.

#![forbid(unsafe_code)]

mod api;
pub mod app;
mod audit;
mod broker;
pub mod clock;
pub mod config;
pub mod crypto;
mod domain;
mod error;
mod flow;
mod http;
mod listener;
mod oidc;
mod providers;
mod secret;
mod store;
pub mod telemetry;

/// Generated gRPC types and services of `authbroker.v1`.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    pub use authbroker_client::pb::*;
    tonic::include_proto!("authbroker.v1");

    /// Encoded file descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("authbroker_descriptor");
}
