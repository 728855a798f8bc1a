//! Prints when the access token of a connection expires (never the token):
//!
//!     AUTHBROKER_ADDR=http://127.0.0.1:50051 AUTHBROKER_TOKEN=caller-token \
//!     cargo run -p authbroker-client --example token -- <connection id>

use std::time::Duration;

use authbroker_client::{RetryPolicy, TokenSource, connect, pb::ErrorReason};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address =
        std::env::var("AUTHBROKER_ADDR").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let caller_token = std::env::var("AUTHBROKER_TOKEN").ok();
    let connection_id = std::env::args()
        .nth(1)
        .ok_or("usage: token <connection id>")?;

    let client = connect(&address, caller_token.as_deref()).await?;
    let tokens = TokenSource::new(client, connection_id)
        .with_margin(Duration::from_secs(60))
        .with_retry(RetryPolicy::default());
    match tokens.token().await {
        Ok(token) => {
            println!("got an access token of {} characters", token.len());
            // A second call within its life is served from the cache.
            tokens.token().await?;
            println!("served again from the cache");
            Ok(())
        }
        Err(e) if e.reason == ErrorReason::ConnectionNeedsReauth => {
            println!("the end user must reconnect: {}", e.message);
            std::process::exit(3)
        }
        Err(e) => Err(e.into()),
    }
}
