//! TLS on the gRPC listener: the certificate, key and (for mTLS) client CA
//! are read from files and read again whenever they change, so a
//! certificate renewed in place (cert-manager) is served to new connections
//! without a restart; open connections keep theirs. A renewal that does not
//! load (a half-written file) is logged and the previous one kept.

use std::{
    path::Path,
    sync::{Arc, RwLock},
};

use anyhow::Context;
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use sha2::{Digest, Sha256};

use crate::config::TlsSettings;

/// Who a verified client certificate says the peer is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PeerIdentity {
    /// URI SANs (SPIFFE IDs among them).
    pub(crate) uris: Vec<String>,
    /// DNS SANs.
    pub(crate) dns_names: Vec<String>,
}

impl PeerIdentity {
    /// The names in a client's leaf certificate (already verified by the
    /// handshake against the client CA).
    pub(crate) fn of(leaf: &CertificateDer<'_>) -> Option<Self> {
        let cert = webpki::EndEntityCert::try_from(leaf).ok()?;
        Some(Self {
            uris: cert.valid_uri_names().map(str::to_owned).collect(),
            dns_names: cert.valid_dns_names().map(str::to_owned).collect(),
        })
    }
}

/// The server's TLS configuration, swapped whole when its files change.
pub(crate) struct Tls {
    settings: TlsSettings,
    current: RwLock<(Arc<ServerConfig>, [u8; 32])>,
}

impl Tls {
    /// Loads the files; an error names the file at fault.
    pub(crate) fn load(settings: &TlsSettings) -> anyhow::Result<Arc<Self>> {
        let (config, digest) = build(settings)?;
        Ok(Arc::new(Self {
            settings: settings.clone(),
            current: RwLock::new((config, digest)),
        }))
    }

    /// The configuration new connections get.
    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Checks the files every `reload_interval` and swaps in a changed set.
    pub(crate) async fn keep_fresh(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.settings.reload_interval).await;
            let Ok(digest) = digest(&self.settings) else {
                continue;
            };
            let unchanged = self.current.read().unwrap_or_else(|e| e.into_inner()).1 == digest;
            if unchanged {
                continue;
            }
            match build(&self.settings) {
                Ok(fresh) => {
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                    tracing::info!("TLS certificate files changed: new connections use them");
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "TLS certificate files changed but do not load; keeping the previous ones");
                }
            }
        }
    }
}

/// A digest of every file, to notice a change whatever its timestamps say
/// (a Kubernetes secret volume swaps a symlink).
fn digest(settings: &TlsSettings) -> std::io::Result<[u8; 32]> {
    let mut hash = Sha256::new();
    for path in files(settings) {
        hash.update(std::fs::read(path)?);
        hash.update([0]);
    }
    Ok(hash.finalize().into())
}

fn files(settings: &TlsSettings) -> impl Iterator<Item = &Path> {
    [
        Some(&settings.cert_file),
        Some(&settings.key_file),
        settings.client_ca_file.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| p.as_path())
}

fn build(settings: &TlsSettings) -> anyhow::Result<(Arc<ServerConfig>, [u8; 32])> {
    let digest = digest(settings).context("reading the TLS files")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&settings.cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|e| anyhow::anyhow!("tls.cert_file {}: {e}", settings.cert_file.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "tls.cert_file {}: no certificate in it",
            settings.cert_file.display()
        );
    }
    // The error never quotes the key file's contents.
    let key = PrivateKeyDer::from_pem_file(&settings.key_file).map_err(|_| {
        anyhow::anyhow!(
            "tls.key_file {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it",
            settings.key_file.display()
        )
    })?;
    let builder = ServerConfig::builder();
    let builder = match &settings.client_ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(path)
                .map_err(|e| anyhow::anyhow!("tls.client_ca_file {}: {e}", path.display()))?
            {
                let ca =
                    ca.map_err(|e| anyhow::anyhow!("tls.client_ca_file {}: {e}", path.display()))?;
                roots
                    .add(ca)
                    .map_err(|e| anyhow::anyhow!("tls.client_ca_file {}: {e}", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| anyhow::anyhow!("tls.client_ca_file {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("tls.cert_file / tls.key_file: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((Arc::new(config), digest))
}
