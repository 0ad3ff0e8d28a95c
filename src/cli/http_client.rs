//! The one HTTP request `rotor login` makes: a form POST to the token endpoint,
//! over HTTP/1.1 (hyper's client connection) on TCP, or on TLS (rustls with the
//! ring provider, the roots of `webpki-roots` and any `--ca-file`) for an https
//! issuer. No redirect is followed and no cookie kept: the token endpoint answers
//! directly (RFC 6749 §3.2). Nothing of the request is logged, since its form
//! carries the code, the verifier and perhaps the client secret.

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode, body::Bytes, header};
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        self, RootCertStore,
        pki_types::{CertificateDer, ServerName, pem::PemObject},
    },
};
use url::{Host, Position, Url};

/// The largest answer read; a token response is a few kilobytes.
const MAX_ANSWER: usize = 1 << 20;

/// How long connecting, sending and reading the answer may take together.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP answer: its status and its whole body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A client for form POSTs to http and https URLs.
#[derive(Clone)]
pub struct HttpClient {
    tls: TlsConnector,
}

impl HttpClient {
    /// A client that trusts the Mozilla roots of `webpki-roots` and, when given,
    /// the PEM certificates in `extra_roots` (a private CA).
    ///
    /// # Errors
    /// `extra_roots` cannot be read or holds no usable certificate.
    pub fn new(extra_roots: Option<&Path>) -> anyhow::Result<HttpClient> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = extra_roots {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .with_context(|| format!("reading the certificates in {}", path.display()))?;
            if certs.is_empty() {
                bail!("{} holds no PEM certificate", path.display());
            }
            for cert in certs {
                roots
                    .add(cert)
                    .with_context(|| format!("a certificate in {}", path.display()))?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(HttpClient {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// POSTs `form` as `application/x-www-form-urlencoded` to `url`, with
    /// `authorization` as the `Authorization` header when given, and reads the
    /// whole answer, whatever its status.
    ///
    /// # Errors
    /// The URL is neither http nor https, the server cannot be reached or its
    /// certificate is not trusted, no answer came within 30 seconds, or the answer
    /// is larger than 1 MiB.
    pub async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        authorization: Option<&SecretString>,
    ) -> anyhow::Result<Answer> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = Request::post(&url[Position::BeforePath..Position::AfterQuery])
            .header(
                header::HOST,
                &url[Position::BeforeHost..Position::AfterPort],
            )
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        if let Some(value) = authorization {
            let mut value = header::HeaderValue::from_str(value.expose_secret())
                .context("the Authorization header")?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .context("building the request")?;
        tokio::time::timeout(TIMEOUT, self.send(url, request))
            .await
            .map_err(|_| anyhow!("no answer from {url} within {}s", TIMEOUT.as_secs()))?
    }

    async fn send(&self, url: &Url, request: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        let host = url.host().ok_or_else(|| anyhow!("{url} names no host"))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| anyhow!("{url} names no port"))?;
        let tcp = match host {
            Host::Domain(name) => TcpStream::connect((name, port)).await,
            Host::Ipv4(ip) => TcpStream::connect(SocketAddr::new(IpAddr::V4(ip), port)).await,
            Host::Ipv6(ip) => TcpStream::connect(SocketAddr::new(IpAddr::V6(ip), port)).await,
        }
        .with_context(|| format!("connecting to {url}"))?;
        match url.scheme() {
            "http" => exchange(tcp, request).await,
            "https" => {
                let name = match host {
                    Host::Domain(name) => ServerName::try_from(name.to_owned())
                        .with_context(|| format!("{name:?} is not a TLS server name"))?,
                    Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(ip).into()),
                    Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(ip).into()),
                };
                let tls = self
                    .tls
                    .connect(name, tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {url}"))?;
                exchange(tls, request).await
            }
            other => bail!("{url}: the scheme {other:?} is neither http nor https"),
        }
    }
}

/// One request and its answer on a fresh HTTP/1.1 connection.
async fn exchange<S>(io: S, request: Request<Full<Bytes>>) -> anyhow::Result<Answer>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .context("starting HTTP/1.1")?;
    // The connection does the I/O while the sender waits for the answer; it ends
    // once the sender is dropped.
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| anyhow!("reading the answer: {e}"))?
        .to_bytes();
    Ok(Answer { status, body })
}
