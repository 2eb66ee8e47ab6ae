//! HTTPS and WSS with rustls: the certificate and key from
//! `http.tls.cert_file` / `key_file` (PEM), reloaded on SIGHUP.
//!
//! One `ServerConfig` serves every connection; its certificate resolver
//! holds the current `CertifiedKey` behind a lock, so a reload swaps what
//! new handshakes present while connections already up keep their session
//! and are never dropped. A reload that fails (a file missing, a key that
//! does not match its certificate) keeps the old pair and logs why.
//!
//! The crypto provider is named here (aws-lc-rs, the one libp2p's QUIC
//! already brings), never taken from the process default: with two
//! providers compiled in, rustls panics when none is named.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// The largest PEM file read: a chain of a few certificates is a few KiB.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The TLS side of the HTTP listener: cheap to clone.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    resolver: Arc<Resolver>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert_file", &self.resolver.cert_file)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Resolver {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a whole `Arc`: a panic cannot leave it
        // half-written.
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

impl Tls {
    /// Reads the pair; an error names the file and what is wrong with it.
    pub fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<Tls> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = read_pair(cert_file, key_file, &provider)?;
        let resolver = Arc::new(Resolver {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider: provider.clone(),
            current: RwLock::new(Arc::new(key)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // HTTP/1.1 only, like the plain listener (WebSockets upgrade on it).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
        })
    }

    /// Reads the files again and presents the new pair to new connections.
    /// On error the old pair stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let key = read_pair(
            &self.resolver.cert_file,
            &self.resolver.key_file,
            &self.resolver.provider,
        )?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

fn read_pem(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        anyhow::bail!("{} is larger than 1 MiB", path.display());
    }
    Ok(bytes)
}

fn read_pair(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let certs = CertificateDer::pem_slice_iter(&read_pem(cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", cert_file.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert_file.display());
    }
    let key = PrivateKeyDer::from_pem_slice(&read_pem(key_file)?)
        .with_context(|| format!("{}: no PEM private key", key_file.display()))?;
    CertifiedKey::from_der(certs, key, provider).with_context(|| {
        format!(
            "{} and {} are not a certificate and its key",
            cert_file.display(),
            key_file.display()
        )
    })
}
