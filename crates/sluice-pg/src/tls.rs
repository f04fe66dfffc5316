//! TLS configuration for both sides: the certificate Sluice offers clients,
//! and how it checks (or, for `prefer`/`require`, deliberately does not check)
//! the certificate of an upstream.
//!
//! Owns: building rustls configs from config files, once, at startup.
//! Does not: do handshakes (the client and upstream modules do).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sluice_config::{ClientTls, Connection, UpstreamTls};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The acceptor for clients that send SSLRequest.
pub fn client_acceptor(config: &ClientTls) -> Result<tokio_rustls::TlsAcceptor, TlsSetupError> {
    let file_error = |path: &std::path::Path, e: &dyn std::fmt::Display| TlsSetupError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(&config.cert_file)
        .map_err(|e| file_error(&config.cert_file, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(&config.cert_file, &e))?;
    if certs.is_empty() {
        return Err(file_error(&config.cert_file, &"no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key_file).map_err(|e| file_error(&config.key_file, &e))?;
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// The TLS client config for one upstream, or `None` for `tls = "disable"`.
pub fn upstream_connector(connection: &Connection) -> Result<Option<tokio_rustls::TlsConnector>, TlsSetupError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let config = match connection.tls {
        UpstreamTls::Disable => return Ok(None),
        // libpq semantics: prefer and require encrypt but do not authenticate the server.
        UpstreamTls::Prefer | UpstreamTls::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
            .with_no_client_auth(),
        UpstreamTls::VerifyFull => {
            let mut roots = rustls::RootCertStore::empty();
            match &connection.ca_file {
                Some(path) => {
                    for cert in CertificateDer::pem_file_iter(path)
                        .map_err(|e| TlsSetupError::File { path: path.display().to_string(), why: e.to_string() })?
                    {
                        let cert = cert.map_err(|e| TlsSetupError::File {
                            path: path.display().to_string(),
                            why: e.to_string(),
                        })?;
                        roots.add(cert)?;
                    }
                }
                None => {
                    for cert in rustls_native_certs::load_native_certs().certs {
                        // A system root rustls cannot parse is skipped, as browsers do.
                        let _ = roots.add(cert);
                    }
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Some(tokio_rustls::TlsConnector::from(Arc::new(config))))
}

/// The server name to present and (for verify-full) check.
pub fn server_name(connection: &Connection) -> Result<ServerName<'static>, TlsSetupError> {
    ServerName::try_from(connection.upstream_host().to_string()).map_err(|e| TlsSetupError::File {
        path: format!("connections.{}.upstream", connection.name),
        why: e.to_string(),
    })
}

/// Encrypts without authenticating the server: what `sslmode=prefer|require`
/// mean in libpq. Signatures are still checked, so the handshake is sound.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
