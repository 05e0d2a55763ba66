//! The peer director (issue 14): the backup's console, reached through its JSON API with
//! an API token (`--peer URL --peer-token-file FILE`, `--peer-ca FILE` to trust its TLS
//! certificate). Piranha left the backup's copy of lvs.cf to `scp`; here the peer panel
//! shows the backup's failover state and configuration version, and copies this
//! director's file to it through the peer's own `POST /api/config/apply` (so the peer
//! validates, keeps its previous version, writes atomically, reloads and audits it as
//! `token:NAME`).
//!
//! The client is one HTTP/1.1 request per connection (hyper), plain for `http://`, rustls
//! for `https://` (trusting only the certificates in `--peer-ca`), 10 seconds for all of it.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Time for one request to the peer, connection to last byte.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The peer's console.
pub struct Peer {
    /// The URL as given (`https://10.0.0.2:3636`).
    pub url: String,
    host: String,
    port: u16,
    token: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl Peer {
    /// `url` (`http://HOST:PORT` or `https://HOST:PORT`), the API token's file (its first
    /// line; the token should have the admin role on the peer), and for https the
    /// certificates to trust (PEM).
    pub fn new(url: &str, token_file: &Path, ca: Option<&Path>) -> Result<Peer, String> {
        let bad = || format!("--peer {url:?}: http://HOST:PORT or https://HOST:PORT");
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => (h, p.parse::<u16>().map_err(|_| bad())?),
            _ => (rest, 3636),
        };
        if host.is_empty() || rest.contains('/') {
            return Err(bad());
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let token = std::fs::read_to_string(token_file)
            .map_err(|e| format!("--peer-token-file {}: {e}", token_file.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if token.is_empty() {
            return Err(format!(
                "--peer-token-file {}: no token in it",
                token_file.display()
            ));
        }
        let tls = match scheme {
            "http" => None,
            "https" => {
                let ca =
                    ca.ok_or("--peer https://... needs --peer-ca (the certificates to trust)")?;
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca)
                    .map_err(|e| format!("{}: {e}", ca.display()))?
                {
                    roots
                        .add(c.map_err(|e| format!("{}: {e}", ca.display()))?)
                        .map_err(|e| format!("{}: {e}", ca.display()))?;
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| format!("--peer {url:?}: {e}"))?;
                Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
            }
            _ => return Err(bad()),
        };
        Ok(Peer {
            url: url.trim_end_matches('/').to_string(),
            host,
            port,
            token,
            tls,
        })
    }

    /// One request: the status and the body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String), String> {
        tokio::time::timeout(TIMEOUT, self.exchange(method, path, body))
            .await
            .map_err(|_| format!("{}: no answer within {TIMEOUT:?}", self.url))?
            .map_err(|e| format!("{}: {e}", self.url))
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String), String> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| e.to_string())?;
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(hyper::body::Bytes::from(
                body.unwrap_or_default(),
            )))
            .map_err(|e| e.to_string())?;
        match &self.tls {
            Some((c, name)) => {
                let s = c
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| e.to_string())?;
                send(hyper_util::rt::TokioIo::new(s), req).await
            }
            None => send(hyper_util::rt::TokioIo::new(tcp), req).await,
        }
    }
}

async fn send<T>(
    io: T,
    req: hyper::Request<http_body_util::Full<hyper::body::Bytes>>,
) -> Result<(u16, String), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let r = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    // The answers are small; cut a runaway one.
    let body = String::from_utf8_lossy(&body[..body.len().min(1 << 20)]).into_owned();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_checked() {
        let dir = std::env::temp_dir().join(format!("rvs-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tok = dir.join("token");
        std::fs::write(&tok, "rvs_abc\n").unwrap();
        let p = Peer::new("http://10.0.0.2:3636/", &tok, None).unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.token.as_str()),
            ("10.0.0.2", 3636, "rvs_abc")
        );
        let p = Peer::new("http://[2001:db8::2]:8080", &tok, None).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("2001:db8::2", 8080));
        assert!(Peer::new("ftp://x:1", &tok, None).is_err());
        assert!(Peer::new("http://x:1/api", &tok, None).is_err());
        assert!(
            Peer::new("https://x:1", &tok, None)
                .err()
                .is_some_and(|e| e.contains("--peer-ca"))
        );
        std::fs::write(&tok, "\n").unwrap();
        assert!(Peer::new("http://x:1", &tok, None).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
