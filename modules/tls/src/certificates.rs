//! Certificate files, and the choice of a certificate by the name a client asks for (SNI).

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use xbuild_core::Hinted;

/// Reads a PEM certificate chain and its private key, and checks that they belong
/// together.
pub(crate) fn load(
    certificate: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, Hinted> {
    let chain = CertificateDer::pem_file_iter(certificate)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Hinted::new(format!(
                "cannot read certificate file `{}`: {e}",
                certificate.display()
            ))
            .help("give a PEM file with the server's certificate first, then its intermediates; relative paths are resolved against the directory the host runs in")
        })?;
    if chain.is_empty() {
        return Err(Hinted::new(format!(
            "certificate file `{}` holds no certificate",
            certificate.display()
        ))
        .help("give a PEM file with `-----BEGIN CERTIFICATE-----` blocks"));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Hinted::new(format!("cannot read key file `{}`: {e}", key.display()))
            .help("give the certificate's private key as a PEM file (PKCS#8, PKCS#1 or SEC1)")
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(private_key)
        .map_err(|e| Hinted::new(format!("key file `{}` cannot be used: {e}", key.display())))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        Hinted::new(format!(
            "key file `{}` is not the key of certificate `{}` ({e})",
            key.display(),
            certificate.display()
        ))
        .help("pair each certificate with its own key")
    })?;
    Ok(certified)
}

/// The first certificate valid for the name the client asks for, else the first one. The
/// set is replaced whole when the files are read again ([`BySni::replace`]); a handshake
/// uses the set it started with.
#[derive(Debug)]
pub(crate) struct BySni {
    certificates: RwLock<Arc<Vec<Arc<CertifiedKey>>>>,
}

impl BySni {
    pub fn new(certificates: Vec<Arc<CertifiedKey>>) -> Self {
        assert!(!certificates.is_empty(), "checked at provision");
        Self {
            certificates: RwLock::new(Arc::new(certificates)),
        }
    }

    /// Serves `certificates` from the next handshake on.
    pub fn replace(&self, certificates: Vec<Arc<CertifiedKey>>) {
        assert!(!certificates.is_empty(), "checked at provision");
        *self.certificates.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certificates);
    }

    /// The certificate a client asking for `name` gets.
    fn for_name(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let certificates = self
            .certificates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let wanted = name.and_then(|name| ServerName::try_from(name).ok());
        let valid_for = |certified: &&Arc<CertifiedKey>| {
            let (Some(wanted), Ok(end_entity)) = (&wanted, certified.end_entity_cert()) else {
                return false;
            };
            webpki::EndEntityCert::try_from(end_entity)
                .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(wanted).is_ok())
        };
        certificates
            .iter()
            .find(valid_for)
            .unwrap_or(&certificates[0])
            .clone()
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.for_name(hello.server_name()))
    }
}
