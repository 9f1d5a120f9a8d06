//! TLS settings: one rustls client configuration per way of checking certificates, built once
//! and shared by every session that checks them that way.

use std::sync::{Arc, OnceLock};

use super::error::{ClientError, ErrorKind};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How a session checks server certificates.
#[derive(Clone)]
pub enum TlsMode {
    /// Verify against the bundled Mozilla roots plus any extra PEM roots.
    Verify { extra_roots_pem: Option<Vec<u8>> },
    /// Accept any certificate (Locust's FastHttpUser default, and `verify=False`).
    Insecure,
}

pub(crate) fn tls_config(mode: &TlsMode) -> Result<Arc<ClientConfig>, ClientError> {
    static VERIFYING: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static INSECURE: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    match mode {
        TlsMode::Verify {
            extra_roots_pem: None,
        } => Ok(VERIFYING
            .get_or_init(|| build_verifying(&[]).expect("bundled roots are valid"))
            .clone()),
        TlsMode::Verify {
            extra_roots_pem: Some(pem),
        } => build_verifying(pem),
        TlsMode::Insecure => Ok(INSECURE.get_or_init(build_insecure).clone()),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build_verifying(extra_pem: &[u8]) -> Result<Arc<ClientConfig>, ClientError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !extra_pem.is_empty() {
        use rustls::pki_types::pem::PemObject;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(extra_pem) {
            let cert = cert.map_err(|e| {
                ClientError::new(ErrorKind::Tls, format!("cannot read CA certificates: {e}"))
            })?;
            roots.add(cert).map_err(|e| {
                ClientError::new(ErrorKind::Tls, format!("bad CA certificate: {e}"))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(ClientError::new(
                ErrorKind::Tls,
                "no PEM certificate found in the CA bundle",
            ));
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn build_insecure() -> Arc<ClientConfig> {
    let provider = provider();
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
