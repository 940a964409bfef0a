//! TLS for the simulator: a certificate and key to serve with, and a generated CA with a server
//! certificate it signed (`upkeep devicesim --tls-self-signed`), so clients verify the simulator
//! against the CA instead of turning verification off.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A server certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The server certificate, then any intermediates.
    pub cert_chain_pem: String,
    /// The private key of the server certificate.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_chain_pem", &self.cert_chain_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A CA generated for one run, and a server certificate it signed.
#[derive(Clone, Debug)]
pub struct GeneratedCa {
    /// The CA certificate (PEM) that clients trust.
    pub ca_pem: String,
    /// What the server serves with.
    pub server: TlsIdentity,
}

/// Certificates cannot be made or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen failed to make a certificate.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PEM text holds no usable certificate or key.
    #[error("the server certificate or key is not usable PEM: {0}")]
    Pem(String),
    /// rustls refused the certificate or key.
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Makes a CA named `common_name` and a server certificate it signed, valid for `names` (DNS
/// names or IP addresses).
pub fn generate(common_name: &str, names: &[String]) -> Result<GeneratedCa, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{common_name} server"));
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &issuer)?;
    Ok(GeneratedCa {
        ca_pem: ca_cert.pem(),
        server: TlsIdentity {
            cert_chain_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
        },
    })
}

/// A rustls server configuration (ring provider, HTTP/1.1) for `identity`.
pub fn server_config(identity: &TlsIdentity) -> Result<ServerConfig, TlsError> {
    let chain = CertificateDer::pem_slice_iter(identity.cert_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Pem("no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_makes_a_server_config() {
        let ca = generate("test CA", &["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert!(ca.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server_config(&ca.server).is_ok());
        assert!(!format!("{:?}", ca.server).contains("PRIVATE KEY"));
        let broken = TlsIdentity {
            cert_chain_pem: "nothing".into(),
            key_pem: ca.server.key_pem.clone(),
        };
        assert!(matches!(server_config(&broken), Err(TlsError::Pem(_))));
    }
}
