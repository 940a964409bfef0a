//! The HTTP client every HTTP driver uses: rustls with the ring provider, TLS verified against
//! the operator's trusted roots or a Device's CA bundle, verification off only when a Device asks
//! for it explicitly, and a timeout on every request.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// How to verify a device's certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// A PEM bundle of CA certificates that sign the device's certificate; without it the
    /// platform's trusted roots are used.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Accept any certificate (a Device's `tls.insecureSkipVerify`).
    pub insecure_skip_verify: bool,
}

/// The HTTP client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA bundle holds no usable certificate.
    #[error("the CA bundle holds no PEM certificate")]
    EmptyBundle,
    /// A certificate of the CA bundle is malformed.
    #[error("the CA bundle is not valid PEM: {0}")]
    Bundle(String),
    /// rustls refused the configuration.
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest refused the configuration.
    #[error("HTTP client configuration failed: {0}")]
    Http(#[from] reqwest::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration for `tls`.
pub fn tls_config(tls: &TlsSettings) -> Result<ClientConfig, ClientError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let config = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(
                provider().signature_verification_algorithms,
            )))
            .with_no_client_auth()
    } else if let Some(pem) = &tls.ca_bundle_pem {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| ClientError::Bundle(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::Bundle(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(ClientError::EmptyBundle);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        use rustls_platform_verifier::BuilderVerifierExt as _;
        builder.with_platform_verifier()?.with_no_client_auth()
    };
    Ok(config)
}

/// An HTTP client for one device: TLS per `tls`, every request bounded by `timeout`, at most a
/// few redirects followed.
pub fn client(tls: &TlsSettings, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(tls)?)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()?)
}

/// Accepts any server certificate, but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAny(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAny {
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
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_must_hold_certificates() {
        let empty = TlsSettings {
            ca_bundle_pem: Some(b"not pem".to_vec()),
            insecure_skip_verify: false,
        };
        assert!(matches!(tls_config(&empty), Err(ClientError::EmptyBundle)));
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let bundle = TlsSettings {
            ca_bundle_pem: Some(cert.cert.pem().into_bytes()),
            insecure_skip_verify: false,
        };
        assert!(client(&bundle, Duration::from_secs(5)).is_ok());
        let insecure = TlsSettings {
            ca_bundle_pem: None,
            insecure_skip_verify: true,
        };
        assert!(client(&insecure, Duration::from_secs(5)).is_ok());
    }
}
