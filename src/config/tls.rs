//! `[tls]` and `health_listen`: TLS on the gRPC listener, optionally
//! requiring a client certificate from the configured CA (mTLS), and a
//! plaintext listener for Kubernetes' gRPC probes, which cannot speak TLS.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

/// `[tls]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert_file: String,
    key_file: String,
    client_ca_file: Option<String>,
    reload_interval_secs: Option<u64>,
}

/// TLS on the gRPC listener.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates: when set, every client must present a
    /// certificate issued by one of them (mTLS).
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are checked for a change (cert-manager renews
    /// them in place); a change applies to new connections.
    pub reload_interval: Duration,
}

impl RawTls {
    pub(super) fn resolve(self) -> Result<TlsSettings, String> {
        let reload = self.reload_interval_secs.unwrap_or(10);
        if !(1..=3_600).contains(&reload) {
            return Err("tls.reload_interval_secs: between 1 and 3600".into());
        }
        for (key, value) in [("cert_file", &self.cert_file), ("key_file", &self.key_file)] {
            if value.is_empty() {
                return Err(format!("tls.{key}: required"));
            }
        }
        Ok(TlsSettings {
            cert_file: self.cert_file.into(),
            key_file: self.key_file.into(),
            client_ca_file: self
                .client_ca_file
                .filter(|f| !f.is_empty())
                .map(Into::into),
            reload_interval: Duration::from_secs(reload),
        })
    }
}
