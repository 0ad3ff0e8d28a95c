//! `rotor login`: the authorization code flow with PKCE from a terminal, the way a
//! native app does it (RFC 8252): a listener on a loopback port the system picks,
//! the browser sent to the authorization endpoint, one redirect back to
//! `http://127.0.0.1:{port}/callback`, and the code exchanged at the token
//! endpoint. The parts that decide something (the URLs, the checks of the
//! callback, the reading of the token answer) are plain functions of their
//! inputs; [`run`] does the I/O around them.

use std::{fmt, net::Ipv4Addr, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use url::Url;

use super::{args::LoginArgs, http_client::HttpClient};
use crate::config::Settings;

/// The path of the redirect URI on the loopback listener.
pub const CALLBACK_PATH: &str = "/callback";

/// The longest request head the listener reads.
const MAX_HEAD: usize = 16 * 1024;

/// How long one connection to the listener may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The authorization and token endpoints of an issuer.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `tokens.issuer`, verbatim: what `iss` must equal (RFC 9207 §2.4).
    pub issuer: String,
    pub authorize: Url,
    pub token: Url,
}

impl Endpoints {
    /// `{issuer}/oauth2/authorize` and `{issuer}/oauth2/token`.
    ///
    /// # Errors
    /// The issuer is not an http or https URL with a host, or has a query or a
    /// fragment (RFC 8414 §2 forbids both).
    pub fn from_issuer(issuer: &str) -> anyhow::Result<Endpoints> {
        let parsed =
            Url::parse(issuer).with_context(|| format!("tokens.issuer {issuer:?} is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            bail!("tokens.issuer {issuer:?} must be an http or https URL with a host");
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            bail!("tokens.issuer {issuer:?} must have neither a query nor a fragment");
        }
        let base = issuer.trim_end_matches('/');
        let endpoint = |path: &str| {
            Url::parse(&format!("{base}{path}"))
                .with_context(|| format!("the endpoint {path} of tokens.issuer"))
        };
        Ok(Endpoints {
            issuer: issuer.to_owned(),
            authorize: endpoint("/oauth2/authorize")?,
            token: endpoint("/oauth2/token")?,
        })
    }

    /// Whether the code and the tokens would cross a network unencrypted: http to
    /// a host that is not the loopback interface.
    pub fn is_cleartext(&self) -> bool {
        self.token.scheme() == "http"
            && !matches!(
                self.token.host_str(),
                Some("127.0.0.1" | "[::1]" | "localhost")
            )
    }
}

/// The redirect URI for a listener on `port` of the loopback interface (RFC 8252
/// §7.3: the IP literal, not `localhost`).
pub fn redirect_uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}{CALLBACK_PATH}")
}

/// The secrets of one login: `state` (RFC 6749 §10.12) and the PKCE verifier
/// (RFC 7636 §4.1). `Debug` prints neither.
pub struct Attempt {
    state: String,
    verifier: SecretString,
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Attempt([redacted])")
    }
}

/// `n` random bytes as unpadded base64url: unreserved characters only.
fn random_urlsafe(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Attempt {
    /// A fresh state (256 bits) and verifier (384 bits, 64 characters; RFC 7636
    /// §7.1 asks for at least 256).
    pub fn generate() -> Attempt {
        Attempt {
            state: random_urlsafe(32),
            verifier: SecretString::from(random_urlsafe(48)),
        }
    }

    /// The state the callback must carry back.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The verifier, for the token request only.
    pub fn verifier(&self) -> &str {
        self.verifier.expose_secret()
    }

    /// RFC 7636 §4.2: `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier().as_bytes()))
    }

    /// The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3): the URL the
    /// browser opens.
    pub fn authorize_url(
        &self,
        endpoints: &Endpoints,
        client_id: &str,
        redirect_uri: &str,
        scope: Option<&str>,
    ) -> Url {
        let mut url = endpoints.authorize.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", redirect_uri);
            if let Some(scope) = scope {
                query.append_pair("scope", scope);
            }
            query
                .append_pair("state", &self.state)
                .append_pair("code_challenge", &self.challenge())
                .append_pair("code_challenge_method", "S256");
        }
        url
    }
}

/// A request the loopback listener read, by its request line.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// `GET /callback?…`, with its decoded query parameters in order.
    Callback(Vec<(String, String)>),
    /// Another path (a browser asks for `/favicon.ico`): 404, keep waiting.
    NotFound,
    /// Another method: 405, keep waiting.
    MethodNotAllowed,
    /// Not an HTTP/1 request line: 400, keep waiting.
    Malformed,
}

/// Reads the request line of a request head: `GET /callback?code=…&state=… HTTP/1.1`.
pub fn parse_request_head(head: &[u8]) -> Incoming {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Incoming::Malformed;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Incoming::Malformed;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Incoming::Malformed;
    }
    if method != "GET" {
        return Incoming::MethodNotAllowed;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        return Incoming::NotFound;
    }
    Incoming::Callback(
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
    )
}

/// Why a callback was refused. What the authorization server or a stranger wrote
/// is printed escaped, so that it cannot drive the terminal.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// RFC 6749 §3.1: parameters MUST NOT be included more than once.
    #[error("the callback repeats the parameter {0:?}: refused")]
    Repeated(String),
    /// RFC 9207 §2.4: an `iss` that is not the issuer's is a mix-up attack.
    #[error("the callback's iss {got:?} is not tokens.issuer {expected:?} (RFC 9207): refused")]
    IssuerMismatch { got: String, expected: String },
    /// RFC 6749 §10.12: a callback without this login's state was not asked for.
    #[error("the callback's state is not this login's: refused")]
    StateMismatch,
    /// RFC 6749 §4.1.2.1: the authorization server refused.
    #[error(
        "the authorization server answered {}{}",
        .error.escape_debug(),
        .description.as_deref().map(|d| format!(": {}", d.escape_debug())).unwrap_or_default()
    )]
    Refused {
        error: String,
        description: Option<String>,
    },
    /// Neither `code` nor `error`.
    #[error("the callback carries neither a code nor an error")]
    NoCode,
}

/// Checks the authorization response (RFC 6749 §4.1.2) and returns its code:
/// no parameter twice, `iss` equal to the issuer when present (RFC 9207 §2.4),
/// then `state` equal to this login's, then `error` or `code`. The issuer and the
/// state are checked before an error is believed: an error response can be
/// forged like any other.
///
/// # Errors
/// The first check that fails.
pub fn check_callback(
    params: &[(String, String)],
    state: &str,
    issuer: &str,
) -> Result<SecretString, CallbackError> {
    for (i, (name, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(n, _)| n == name) {
            return Err(CallbackError::Repeated(name.clone()));
        }
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(iss) = get("iss")
        && iss != issuer
    {
        return Err(CallbackError::IssuerMismatch {
            got: iss.to_owned(),
            expected: issuer.to_owned(),
        });
    }
    if get("state") != Some(state) {
        return Err(CallbackError::StateMismatch);
    }
    if let Some(error) = get("error") {
        return Err(CallbackError::Refused {
            error: error.to_owned(),
            description: get("error_description").map(str::to_owned),
        });
    }
    match get("code") {
        Some(code) if !code.is_empty() => Ok(SecretString::from(code.to_owned())),
        _ => Err(CallbackError::NoCode),
    }
}

/// The token request (RFC 6749 §4.1.3, RFC 7636 §4.5): its form, and the
/// `Authorization: Basic` value of a confidential client (§2.3.1: id and secret
/// form-url-encoded). A public client names itself with `client_id` instead.
pub fn token_request<'a>(
    code: &'a SecretString,
    redirect_uri: &'a str,
    attempt: &'a Attempt,
    client_id: &'a str,
    client_secret: Option<&SecretString>,
) -> (Vec<(&'a str, &'a str)>, Option<SecretString>) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose_secret()),
        ("redirect_uri", redirect_uri),
        ("code_verifier", attempt.verifier()),
    ];
    let basic = match client_secret {
        Some(secret) => {
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(client_id), enc(secret.expose_secret()));
            Some(SecretString::from(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )))
        }
        None => {
            form.push(("client_id", client_id));
            None
        }
    };
    (form, basic)
}

/// Reads the token endpoint's answer: a 200 with a JSON object holding an
/// `access_token` becomes the pretty JSON to print (RFC 6749 §5.1).
///
/// # Errors
/// Any other answer, with the RFC 6749 §5.2 `error` and `error_description` when
/// the body has them.
pub fn read_token_answer(status: u16, body: &[u8]) -> anyhow::Result<String> {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if status == 200 {
        let Some(json) = json.filter(|j| j.get("access_token").is_some_and(|t| t.is_string()))
        else {
            bail!(
                "the token endpoint answered 200 without a token response (RFC 6749 section 5.1)"
            );
        };
        return Ok(serde_json::to_string_pretty(&json)?);
    }
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .map(|s| s.escape_debug().to_string())
    };
    match (field("error"), field("error_description")) {
        (Some(error), Some(description)) => {
            bail!("the token endpoint answered {status}: {error}: {description}")
        }
        (Some(error), None) => bail!("the token endpoint answered {status}: {error}"),
        _ => bail!("the token endpoint answered {status} without an OAuth error"),
    }
}

/// `rotor login`: prints the authorize URL (on standard error, on a line of its
/// own), opens it with `$BROWSER` when set, waits for the callback, exchanges the
/// code and prints the token response (on standard output) as pretty JSON.
///
/// # Errors
/// Bad settings, no callback in time, a refused or forged callback, or a token
/// endpoint that refused the code.
pub async fn run(args: LoginArgs, settings: &Settings) -> anyhow::Result<()> {
    let endpoints = Endpoints::from_issuer(&settings.tokens.issuer)?;
    let client_secret = if args.client_secret_stdin {
        Some(SecretString::from(super::read_stdin_secret(
            "client secret",
        )?))
    } else {
        None
    };
    let http = HttpClient::new(args.ca_file.as_deref())?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("listening on a loopback port for the redirect")?;
    let redirect_uri = redirect_uri(listener.local_addr()?.port());
    let attempt = Attempt::generate();
    let url = attempt.authorize_url(
        &endpoints,
        &args.client,
        &redirect_uri,
        args.scope.as_deref(),
    );
    if endpoints.is_cleartext() {
        eprintln!(
            "note: tokens.issuer is http: the code and the tokens cross the network unencrypted"
        );
    }
    eprintln!("Open this URL in a browser to sign in:\n\n{url}\n");
    open_browser(url.as_str());
    eprintln!(
        "Waiting up to {} for the browser to come back to {redirect_uri}",
        humantime::format_duration(args.timeout)
    );
    let (params, mut browser) = wait_for_callback(listener, args.timeout).await?;
    let checked = check_callback(&params, attempt.state(), &endpoints.issuer);
    let page = match checked {
        Ok(_) => SIGNED_IN_PAGE,
        Err(_) => FAILED_PAGE,
    };
    // The browser may have gone already: its page is a courtesy.
    let _ = respond(&mut browser, "200 OK", page).await;
    drop(browser);
    let code = checked?;
    let (form, basic) = token_request(
        &code,
        &redirect_uri,
        &attempt,
        &args.client,
        client_secret.as_ref(),
    );
    let answer = http
        .post_form(&endpoints.token, &form, basic.as_ref())
        .await
        .context("exchanging the code at the token endpoint")?;
    println!(
        "{}",
        read_token_answer(answer.status.as_u16(), &answer.body)?
    );
    Ok(())
}

/// Runs `$BROWSER URL` when `BROWSER` is set. Not opening a browser is no error:
/// the URL is printed for a person to open.
fn open_browser(url: &str) {
    let Some(browser) = std::env::var_os("BROWSER").filter(|b| !b.is_empty()) else {
        return;
    };
    // The browser's own output goes to standard error: standard output is for the
    // token response.
    let spawned = std::process::Command::new(&browser)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .spawn();
    match spawned {
        Ok(mut child) => {
            std::thread::spawn(move || {
                if let Ok(status) = child.wait()
                    && !status.success()
                {
                    eprintln!("note: $BROWSER exited with {status}; open the URL above yourself");
                }
            });
        }
        Err(e) => eprintln!(
            "note: could not start $BROWSER ({}): {e}; open the URL above yourself",
            browser.to_string_lossy()
        ),
    }
}

/// Accepts connections on the listener until one brings `GET /callback`, or
/// `timeout` passes. Each connection is read on a task of its own, so a browser's
/// idle pre-connection cannot hold up the callback; other requests get 404.
async fn wait_for_callback(
    listener: TcpListener,
    timeout: Duration,
) -> anyhow::Result<(Vec<(String, String)>, TcpStream)> {
    let (found, mut callbacks) = mpsc::channel(1);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => bail!(
                "no redirect came back within {}",
                humantime::format_duration(timeout)
            ),
            Some(callback) = callbacks.recv() => return Ok(callback),
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("accepting on the loopback listener")?;
                tokio::spawn(serve_connection(stream, found.clone()));
            }
        }
    }
}

/// Reads one request; hands a callback over with its connection, answers
/// anything else.
async fn serve_connection(
    mut stream: TcpStream,
    found: mpsc::Sender<(Vec<(String, String)>, TcpStream)>,
) {
    let Ok(Some(head)) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await else {
        return;
    };
    let (status, page) = match parse_request_head(&head) {
        Incoming::Callback(params) => {
            // Only the first callback counts; the loop stops at it.
            let _ = found.send((params, stream)).await;
            return;
        }
        Incoming::NotFound => ("404 Not Found", NOT_FOUND_PAGE),
        Incoming::MethodNotAllowed => ("405 Method Not Allowed", NOT_FOUND_PAGE),
        Incoming::Malformed => ("400 Bad Request", NOT_FOUND_PAGE),
    };
    let _ = respond(&mut stream, status, page).await;
}

/// Reads a request head, up to its blank line, so that closing the connection
/// after the answer does not reset it. `None` when the peer closes first or sends
/// more than [`MAX_HEAD`].
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Some(head);
        }
        if head.len() > MAX_HEAD {
            return None;
        }
    }
}

/// Writes a small HTML answer and closes the connection. The page loads nothing
/// and sends no referrer: the callback URL holds the code.
async fn respond(stream: &mut TcpStream, status: &str, page: &str) -> std::io::Result<()> {
    let answer = format!(
        "HTTP/1.1 {status}\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-store\r\n\
         Content-Security-Policy: default-src 'none'\r\n\
         Referrer-Policy: no-referrer\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Connection: close\r\n\r\n{page}",
        page.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

const SIGNED_IN_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Signed in</title></head><body><h1>Signed in</h1>\
<p>rotor login received the authorization. You can close this window and return to the terminal.</p>\
</body></html>\n";

const FAILED_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Sign-in failed</title></head><body><h1>Sign-in failed</h1>\
<p>rotor login did not get an authorization; the terminal says why. You can close this window.</p>\
</body></html>\n";

const NOT_FOUND_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Not found</title></head><body><p>Not found.</p></body></html>\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::pkce::CodeChallenge;

    const ISSUER: &str = "https://auth.example.com";

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn query(url: &Url) -> Vec<(String, String)> {
        url.query_pairs().into_owned().collect()
    }

    #[test]
    fn the_endpoints_are_the_issuer_with_the_oauth2_paths() {
        let e = Endpoints::from_issuer("https://auth.example.com/").unwrap();
        assert_eq!(
            e.authorize.as_str(),
            "https://auth.example.com/oauth2/authorize"
        );
        assert_eq!(e.token.as_str(), "https://auth.example.com/oauth2/token");
        assert_eq!(e.issuer, "https://auth.example.com/");
        let e = Endpoints::from_issuer("http://127.0.0.1:8080/tenant").unwrap();
        assert_eq!(
            e.token.as_str(),
            "http://127.0.0.1:8080/tenant/oauth2/token"
        );
        assert!(!e.is_cleartext());
        assert!(
            Endpoints::from_issuer("http://auth.example.com")
                .unwrap()
                .is_cleartext()
        );
        for bad in ["ftp://x", "not a url", "https://x/?a=b", "https://x/#f"] {
            assert!(Endpoints::from_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_authorize_url_carries_the_code_flow_parameters_and_an_s256_challenge() {
        let endpoints = Endpoints::from_issuer(ISSUER).unwrap();
        let attempt = Attempt::generate();
        let redirect = redirect_uri(49152);
        let url = attempt.authorize_url(
            &endpoints,
            "demo cli",
            &redirect,
            Some("read offline_access"),
        );
        assert!(
            url.as_str()
                .starts_with("https://auth.example.com/oauth2/authorize?")
        );
        assert_eq!(
            query(&url),
            params(&[
                ("response_type", "code"),
                ("client_id", "demo cli"),
                ("redirect_uri", "http://127.0.0.1:49152/callback"),
                ("scope", "read offline_access"),
                ("state", attempt.state()),
                ("code_challenge", &attempt.challenge()),
                ("code_challenge_method", "S256"),
            ])
        );
        // The server's own rules accept the pair.
        crate::oauth::pkce::check_verifier(attempt.verifier()).unwrap();
        let challenge = CodeChallenge::from_request(Some(&attempt.challenge()), Some("S256"))
            .unwrap()
            .unwrap();
        assert!(challenge.is_met_by(attempt.verifier()));
        assert!(!url.as_str().contains(attempt.verifier()));
    }

    #[test]
    fn without_a_scope_the_authorize_url_has_none() {
        let endpoints = Endpoints::from_issuer(ISSUER).unwrap();
        let url = Attempt::generate().authorize_url(&endpoints, "c", &redirect_uri(1), None);
        assert!(query(&url).iter().all(|(n, _)| n != "scope"));
    }

    #[test]
    fn each_attempt_has_its_own_state_and_a_long_verifier_that_debug_hides() {
        let (a, b) = (Attempt::generate(), Attempt::generate());
        assert_ne!(a.state(), b.state());
        assert_ne!(a.verifier(), b.verifier());
        assert_eq!(a.verifier().len(), 64);
        assert_eq!(a.state().len(), 43);
        let debug = format!("{a:?}");
        assert!(!debug.contains(a.verifier()) && !debug.contains(a.state()));
    }

    #[test]
    fn the_callback_request_line_is_read_and_its_query_decoded() {
        assert_eq!(
            parse_request_head(b"GET /callback?code=a%2Bb&state=s+t&iss=https%3A%2F%2Fx HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
            Incoming::Callback(params(&[("code", "a+b"), ("state", "s t"), ("iss", "https://x")]))
        );
        assert_eq!(
            parse_request_head(b"GET /callback HTTP/1.0\n\n"),
            Incoming::Callback(vec![])
        );
        assert_eq!(
            parse_request_head(b"GET /favicon.ico HTTP/1.1\r\n\r\n"),
            Incoming::NotFound
        );
        assert_eq!(
            parse_request_head(b"GET /callbackx?code=1 HTTP/1.1\r\n\r\n"),
            Incoming::NotFound
        );
        assert_eq!(
            parse_request_head(b"POST /callback HTTP/1.1\r\n\r\n"),
            Incoming::MethodNotAllowed
        );
        for bad in [
            &b"GET /callback\r\n\r\n"[..],
            b"GET  /callback HTTP/1.1\r\n\r\n",
            b"GET http://x/callback HTTP/1.1\r\n\r\n",
            b"GET /callback SPDY/3\r\n\r\n",
            b"\xff\xfe /callback HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_request_head(bad), Incoming::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn a_callback_with_this_state_and_issuer_gives_its_code() {
        let code = check_callback(
            &params(&[("code", "the-code"), ("state", "s1"), ("iss", ISSUER)]),
            "s1",
            ISSUER,
        )
        .unwrap();
        assert_eq!(code.expose_secret(), "the-code");
        // RFC 9207 §2.4: iss is checked when present.
        let code =
            check_callback(&params(&[("code", "c"), ("state", "s1")]), "s1", ISSUER).unwrap();
        assert_eq!(code.expose_secret(), "c");
    }

    #[test]
    fn a_callback_with_another_state_is_refused() {
        for state in [None, Some(""), Some("s2"), Some("s1 ")] {
            let mut p = params(&[("code", "c"), ("iss", ISSUER)]);
            if let Some(s) = state {
                p.push(("state".into(), s.into()));
            }
            assert!(
                matches!(
                    check_callback(&p, "s1", ISSUER),
                    Err(CallbackError::StateMismatch)
                ),
                "{state:?}"
            );
        }
    }

    #[test]
    fn a_callback_from_another_issuer_is_refused_even_when_it_is_an_error() {
        let p = params(&[
            ("code", "c"),
            ("state", "s1"),
            ("iss", "https://evil.example"),
        ]);
        let err = check_callback(&p, "s1", ISSUER).unwrap_err();
        assert!(
            matches!(&err, CallbackError::IssuerMismatch { got, .. } if got == "https://evil.example")
        );
        let p = params(&[
            ("error", "access_denied"),
            ("state", "s1"),
            ("iss", "https://auth.example.com/"),
        ]);
        assert!(matches!(
            check_callback(&p, "s1", ISSUER),
            Err(CallbackError::IssuerMismatch { .. })
        ));
    }

    #[test]
    fn an_error_callback_is_reported_with_its_description_escaped() {
        let p = params(&[
            ("error", "access_denied"),
            ("error_description", "the person said no\u{1b}[2J"),
            ("state", "s1"),
            ("iss", ISSUER),
        ]);
        let err = check_callback(&p, "s1", ISSUER).unwrap_err();
        assert_eq!(
            err.to_string(),
            r"the authorization server answered access_denied: the person said no\u{1b}[2J"
        );
        let p = params(&[("error", "login_required"), ("state", "s1")]);
        assert_eq!(
            check_callback(&p, "s1", ISSUER).unwrap_err().to_string(),
            "the authorization server answered login_required"
        );
    }

    #[test]
    fn a_repeated_parameter_or_a_missing_code_is_refused() {
        let p = params(&[("code", "a"), ("state", "s1"), ("code", "b")]);
        assert!(matches!(
            check_callback(&p, "s1", ISSUER),
            Err(CallbackError::Repeated(name)) if name == "code"
        ));
        let p = params(&[("state", "s1"), ("state", "s1"), ("code", "b")]);
        assert!(matches!(
            check_callback(&p, "s1", ISSUER),
            Err(CallbackError::Repeated(_))
        ));
        for p in [
            params(&[("state", "s1")]),
            params(&[("state", "s1"), ("code", "")]),
        ] {
            assert!(matches!(
                check_callback(&p, "s1", ISSUER),
                Err(CallbackError::NoCode)
            ));
        }
    }

    #[test]
    fn a_public_client_names_itself_and_a_confidential_one_uses_basic() {
        let attempt = Attempt::generate();
        let code = SecretString::from("the-code".to_owned());
        let redirect = redirect_uri(5000);
        let (form, basic) = token_request(&code, &redirect, &attempt, "demo-cli", None);
        assert_eq!(
            form,
            [
                ("grant_type", "authorization_code"),
                ("code", "the-code"),
                ("redirect_uri", "http://127.0.0.1:5000/callback"),
                ("code_verifier", attempt.verifier()),
                ("client_id", "demo-cli"),
            ]
        );
        assert!(basic.is_none());
        let secret = SecretString::from("s3cr:t".to_owned());
        let (form, basic) = token_request(&code, &redirect, &attempt, "my app", Some(&secret));
        assert!(form.iter().all(|(n, _)| *n != "client_id"));
        // RFC 6749 §2.3.1: both form-url-encoded before base64.
        let expected = base64::engine::general_purpose::STANDARD.encode("my+app:s3cr%3At");
        assert_eq!(basic.unwrap().expose_secret(), format!("Basic {expected}"));
    }

    #[test]
    fn a_token_response_is_printed_as_pretty_json() {
        let out = read_token_answer(
            200,
            br#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#,
        )
        .unwrap();
        assert_eq!(
            out,
            "{\n  \"access_token\": \"at\",\n  \"expires_in\": 60,\n  \"token_type\": \"Bearer\"\n}"
        );
        assert!(read_token_answer(200, b"<html>").is_err());
        assert!(read_token_answer(200, br#"{"token_type":"Bearer"}"#).is_err());
    }

    #[test]
    fn a_refused_token_request_names_the_oauth_error() {
        let err = read_token_answer(
            400,
            br#"{"error":"invalid_grant","error_description":"the code is unknown"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the token endpoint answered 400: invalid_grant: the code is unknown"
        );
        assert_eq!(
            read_token_answer(401, br#"{"error":"invalid_client"}"#)
                .unwrap_err()
                .to_string(),
            "the token endpoint answered 401: invalid_client"
        );
        assert_eq!(
            read_token_answer(502, b"Bad Gateway")
                .unwrap_err()
                .to_string(),
            "the token endpoint answered 502 without an OAuth error"
        );
    }
}
