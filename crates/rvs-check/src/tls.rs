//! SSL_GET's TLS client: rustls with the ring provider, no certificate verification (keepalived
//! verifies nothing unless told, and real servers commonly have self-signed certificates),
//! SNI only when `enable_sni` is set.
//!
//! The handshake's signatures are still checked — the peer must hold the key of the
//! certificate it shows — only the certificate itself is taken as it is.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::budget::{Budget, Fail, Res};

/// Accepts any certificate; verifies the handshake signatures with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration, with or without SNI; built once.
fn config(sni: bool) -> Res<Arc<ClientConfig>> {
    static WITH_SNI: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    static WITHOUT_SNI: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    let cell = if sni { &WITH_SNI } else { &WITHOUT_SNI };
    cell.get_or_init(|| build(sni))
        .clone()
        .map_err(|e| Fail::new(format!("tls: {e}")))
}

fn build(sni: bool) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.enable_sni = sni;
    Ok(Arc::new(config))
}

/// The server name of the handshake: the host name when SNI is wanted and `host` is one
/// (a `:port` suffix dropped), otherwise the address, which rustls never sends as SNI.
fn server_name(sni: bool, host: Option<&str>, addr: IpAddr) -> ServerName<'static> {
    let name = host.filter(|_| sni).map(strip_port).and_then(|h| {
        if h.parse::<IpAddr>().is_ok() {
            return None;
        }
        ServerName::try_from(h.to_string()).ok()
    });
    name.unwrap_or(ServerName::IpAddress(addr.into()))
}

/// `host` without a `:port` suffix (and without the brackets of an IPv6 literal).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The TLS handshake over `tcp`, within the budget.
pub(crate) async fn connect(
    tcp: TcpStream,
    sni: bool,
    host: Option<&str>,
    addr: IpAddr,
    budget: Budget,
) -> Res<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(config(sni)?);
    let name = server_name(sni, host, addr);
    budget.io("tls", connector.connect(name, tcp)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_name_only_for_host_names_when_enabled() {
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        let ip = ServerName::IpAddress(addr.into());
        let dns = |s: &str| ServerName::try_from(s.to_string()).unwrap();
        assert_eq!(
            server_name(true, Some("www.example.com"), addr),
            dns("www.example.com")
        );
        assert_eq!(
            server_name(true, Some("www.example.com:8443"), addr),
            dns("www.example.com")
        );
        assert_eq!(server_name(false, Some("www.example.com"), addr), ip);
        assert_eq!(server_name(true, None, addr), ip);
        assert_eq!(server_name(true, Some("192.0.2.9"), addr), ip);
        assert_eq!(server_name(true, Some("[2001:db8::1]:443"), addr), ip);
    }

    #[test]
    fn both_configurations_build_with_ring() {
        assert!(config(true).unwrap().enable_sni);
        assert!(!config(false).unwrap().enable_sni);
    }
}
