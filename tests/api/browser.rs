//! A small browser for the API tests of the authorization code flow: it keeps
//! cookies (as a browser would, whatever their `Secure` flag: the test server's
//! issuer is https, its socket http), reads the one form of a page, and posts it
//! back with its hidden inputs.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::helpers::TestApp;

/// An answer as the browser saw it.
#[derive(Debug)]
pub struct Seen {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Seen {
    /// The page's `<title>`.
    pub fn title(&self) -> &str {
        between(&self.html, "<title>", "</title>").unwrap_or_default()
    }

    /// The hidden inputs of the page's form.
    pub fn hidden_inputs(&self) -> Vec<(String, String)> {
        let mut inputs = Vec::new();
        for tag in self.html.split("<input").skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            if attribute(tag, "type").as_deref() == Some("hidden") {
                let name = attribute(tag, "name").unwrap_or_default();
                let value = attribute(tag, "value").unwrap_or_default();
                inputs.push((name, value));
            }
        }
        inputs
    }

    /// The hidden inputs of the form posting to `action` (a page with many forms).
    pub fn form_inputs(&self, action: &str) -> Vec<(String, String)> {
        let marker = format!("action=\"{action}\"");
        let Some(at) = self.html.find(&marker) else {
            panic!("no form posting to {action}: {}", self.html);
        };
        let rest = &self.html[at..];
        let form = &rest[..rest.find("</form>").unwrap_or(rest.len())];
        Seen {
            status: self.status,
            location: None,
            headers: reqwest::header::HeaderMap::new(),
            html: form.to_owned(),
        }
        .hidden_inputs()
    }

    /// A query parameter of the redirect location.
    pub fn location_param(&self, name: &str) -> Option<String> {
        let location = self.location.as_deref()?;
        let query = location.split_once('?')?.1;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Whether the answer redirects to `prefix`.
    pub fn redirects_to(&self, prefix: &str) -> bool {
        self.location
            .as_deref()
            .is_some_and(|l| l.starts_with(prefix))
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let value = between(tag, &format!(" {name}=\""), "\"")?;
    Some(unescape(value))
}

/// Undoes HTML escaping: named entities for the five escaped characters, and
/// numeric ones.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find(';') else {
            break;
        };
        let entity = &rest[at + 1..at + end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[at + end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A browser with a cookie jar, talking to one test server.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookies: BTreeMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            cookies: BTreeMap::new(),
        }
    }

    /// The same cookies, talking to another instance.
    pub fn on<'b>(&self, app: &'b TestApp) -> Browser<'b> {
        Browser {
            app,
            cookies: self.cookies.clone(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn seen(&mut self, response: reqwest::Response) -> Seen {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all(reqwest::header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let location = headers
            .get(reqwest::header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        let html = response.text().await.unwrap();
        Seen {
            status,
            location,
            headers,
            html,
        }
    }

    /// GETs a path (with its query) of the server.
    pub async fn get(&mut self, path_and_query: &str) -> Seen {
        let response = self
            .app
            .http
            .get(format!("{}{path_and_query}", self.app.address))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.seen(response).await
    }

    /// POSTs a form to a path of the server.
    pub async fn post(&mut self, path: &str, form: &[(String, String)]) -> Seen {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .app
            .http
            .post(format!("{}{path}", self.app.address))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .unwrap();
        self.seen(response).await
    }

    /// Submits the login form of `page` with these credentials.
    pub async fn sign_in(&mut self, page: &Seen, username: &str, password: &str) -> Seen {
        assert_eq!(page.title(), "Sign in", "not the login page: {}", page.html);
        let mut form = page.hidden_inputs();
        form.push(("username".into(), username.into()));
        form.push(("password".into(), password.into()));
        self.post("/oauth2/authorize", &form).await
    }

    /// Answers the consent page `page`.
    pub async fn decide(&mut self, page: &Seen, decision: &str) -> Seen {
        assert_eq!(
            page.title(),
            "Authorize",
            "not the consent page: {}",
            page.html
        );
        let mut form = page.hidden_inputs();
        form.push(("decision".into(), decision.into()));
        self.post("/oauth2/authorize", &form).await
    }

    /// Confirms the logout.
    pub async fn log_out(&mut self) -> Seen {
        let page = self.get("/oauth2/logout").await;
        assert_eq!(page.title(), "Sign out", "{}", page.html);
        let form = page.hidden_inputs();
        self.post("/oauth2/logout", &form).await
    }
}

/// A PKCE pair: a verifier and its S256 challenge (RFC 7636 §4.1–4.2).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// `/oauth2/authorize?…` with these parameters, url-encoded.
pub fn authorize_path(params: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oauth2/authorize?{query}")
}
