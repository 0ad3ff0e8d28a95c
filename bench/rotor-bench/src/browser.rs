//! The browser modes of `load`: `browser_login`, a first sign-in from scratch
//! (authorize, login form, code exchange), and `code_exchange`, the exchange
//! alone with codes obtained by single sign-on (RFC 6749 §4.1, RFC 7636 `S256`).
//!
//! The generator is the browser and the app at once: it keeps the cookies of one
//! sign-in, reads the login form's hidden inputs and posts them back, takes the
//! code from the redirect's `Location` (never following it) and exchanges it as a
//! public client, naming itself with `client_id`.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use sha2::{Digest, Sha256};
use tokio::sync::Barrier;

use crate::{
    load::{Ctx, Tally, TokenBody, Window, form_encode, send_token_request, transport_kind},
    random_secret,
};

/// Codes per `code_exchange` worker in a round: a round of 16 workers is 512
/// single sign-ons, then 512 exchanges, well under a second each at the rates
/// rotor reaches here, so that a 10 s window holds several rounds. A phase's last
/// requests run at less than full concurrency, about one request's latency out
/// of the phase. Codes live `authorize.code_ttl` (60 s at most), far longer than
/// a round.
const CODES_PER_WORKER: usize = 32;

/// A PKCE verifier and its `S256` challenge (RFC 7636 §4.1, §4.2).
struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    /// 32 random bytes as base64url: a verifier of 43 unreserved characters, the
    /// shortest RFC 7636 §4.1 allows, with the entropy it recommends.
    fn generate() -> Pkce {
        let verifier = random_secret();
        let challenge = s256(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// BASE64URL(SHA256(verifier)) (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The cookies of one browser: every `Set-Cookie` kept by name, all sent back.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(SET_COOKIE) {
            let Ok(set) = set.to_str() else { continue };
            let pair = set.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if value.is_empty() || set.contains("Max-Age=0") {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
}

/// An answer as the browser saw it.
struct Seen {
    status: u16,
    location: Option<String>,
    html: String,
}

/// GETs `url` (`form` = None) or POSTs `form` to it, with the jar's cookies,
/// keeping the cookies of the answer.
async fn visit(ctx: &Ctx, jar: &mut Jar, url: &str, form: Option<String>) -> Result<Seen, String> {
    let request = match form {
        None => ctx.http.get(url),
        Some(body) => ctx
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body),
    };
    let response = request
        .header(COOKIE, jar.header())
        .send()
        .await
        .map_err(|e| transport_kind(&e))?;
    jar.keep(response.headers());
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let html = response.text().await.map_err(|_| "body".to_owned())?;
    Ok(Seen {
        status,
        location,
        html,
    })
}

/// The authorization request of the public client with this PKCE pair and state.
fn authorize_url(ctx: &Ctx, pkce: &Pkce, state: &str) -> String {
    format!(
        "{}?response_type=code&client_id={}&redirect_uri={}&state={}&code_challenge={}&code_challenge_method=S256",
        ctx.authorize_url,
        form_encode(&ctx.public_client),
        form_encode(&ctx.redirect_uri),
        form_encode(state),
        pkce.challenge,
    )
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// Undoes HTML escaping: the named entities of the five escaped characters, and
/// numeric ones.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let decoded = rest[at..].find(';').and_then(|end| {
            let entity = &rest[at + 1..at + end];
            let c = match entity {
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
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
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

/// The hidden inputs of a page's form, unescaped.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attribute =
        |tag: &str, name: &str| between(tag, &format!(" {name}=\""), "\"").map(unescape);
    html.split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = tag.split('>').next().unwrap_or_default();
            if attribute(tag, "type").as_deref() != Some("hidden") {
                return None;
            }
            Some((attribute(tag, "name")?, attribute(tag, "value")?))
        })
        .collect()
}

/// The code of a redirect to the client's redirect URI, after checking its
/// `state` and that it names the issuer (RFC 9207 §2).
fn code_from(ctx: &Ctx, seen: &Seen, state: &str) -> Result<String, String> {
    let location = seen.location.as_deref().ok_or("no_location")?;
    let query = location
        .strip_prefix(ctx.redirect_uri.as_str())
        .and_then(|rest| rest.strip_prefix('?'))
        .ok_or("not_the_redirect_uri")?;
    let mut code = None;
    let mut state_ok = false;
    let mut iss = false;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "code" => code = Some(v.into_owned()),
            "state" => state_ok = v == state,
            "iss" => iss = !v.is_empty(),
            "error" => return Err(format!("redirect_error_{v}")),
            _ => {}
        }
    }
    if !state_ok {
        return Err("state_mismatch".into());
    }
    if !iss {
        return Err("no_iss".into());
    }
    code.filter(|c| !c.is_empty())
        .ok_or_else(|| "no_code".into())
}

/// The login page of a fresh authorization request: its hidden inputs.
async fn login_form(
    ctx: &Ctx,
    jar: &mut Jar,
    pkce: &Pkce,
    state: &str,
) -> Result<Vec<(String, String)>, String> {
    let page = visit(ctx, jar, &authorize_url(ctx, pkce, state), None)
        .await
        .map_err(|k| format!("authorize_{k}"))?;
    if page.status != 200 {
        return Err(format!("authorize_http_{}", page.status));
    }
    let inputs = hidden_inputs(&page.html);
    if !inputs.iter().any(|(name, _)| name == "csrf_token") {
        return Err("authorize_no_login_form".into());
    }
    Ok(inputs)
}

/// Posts the login form as user `user`: the code of the 303 that follows (RFC
/// 6749 §4.1.2), and the session cookie kept in the jar.
async fn sign_in(
    ctx: &Ctx,
    jar: &mut Jar,
    inputs: Vec<(String, String)>,
    user: usize,
    state: &str,
) -> Result<String, String> {
    let (name, password) = &ctx.users[user % ctx.users.len()];
    let mut form: Vec<String> = inputs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect();
    form.push(format!("username={}", form_encode(name)));
    form.push(format!("password={}", form_encode(password)));
    let done = visit(ctx, jar, &ctx.authorize_url, Some(form.join("&")))
        .await
        .map_err(|k| format!("login_{k}"))?;
    if done.status != 303 {
        return Err(format!("login_http_{}", done.status));
    }
    code_from(ctx, &done, state).map_err(|k| format!("login_{k}"))
}

/// Exchanges a code as the public client (RFC 6749 §4.1.3, RFC 7636 §4.5). A 200
/// counts only if it carries an access token and a refresh token: the client is
/// allowed `refresh_token`.
async fn exchange(ctx: &Ctx, code: &str, pkce: &Pkce) -> Result<(), String> {
    let body = format!(
        "grant_type=authorization_code&client_id={}&code={}&redirect_uri={}&code_verifier={}",
        form_encode(&ctx.public_client),
        form_encode(code),
        form_encode(&ctx.redirect_uri),
        pkce.verifier,
    );
    match send_token_request(ctx.http.post(&ctx.token_url), body).await {
        Ok(TokenBody {
            access_token,
            refresh_token: Some(refresh),
        }) if !access_token.is_empty() && !refresh.is_empty() => Ok(()),
        Ok(TokenBody { access_token, .. }) if access_token.is_empty() => {
            Err("no_access_token".into())
        }
        Ok(_) => Err("no_refresh_token".into()),
        Err(kind) => Err(format!("exchange_{kind}")),
    }
}

/// A first sign-in, as a person's browser and the app run it: a fresh jar, the
/// login page, the login form, the code exchange.
async fn first_sign_in(ctx: &Ctx, user: usize) -> Result<(), String> {
    let mut jar = Jar::default();
    let pkce = Pkce::generate();
    let state = random_secret();
    let inputs = login_form(ctx, &mut jar, &pkce, &state).await?;
    let code = sign_in(ctx, &mut jar, inputs, user, &state).await?;
    exchange(ctx, &code, &pkce).await
}

/// `browser_login`: full first sign-ins, one after the other; one operation and
/// one latency per completed sign-in.
pub async fn browser_login_worker(
    ctx: Arc<Ctx>,
    first_user: usize,
    stride: usize,
    w: Window,
) -> Tally {
    let mut t = Tally::default();
    let mut user = first_user;
    while Instant::now() < w.end {
        let start = Instant::now();
        let result = first_sign_in(&ctx, user).await;
        user = user.wrapping_add(stride);
        let done = Instant::now();
        if !w.counts(done) {
            continue;
        }
        match result {
            Ok(()) => t.success(done - start),
            Err(kind) => t.error(&kind),
        }
    }
    t
}

/// A browser signed in once, for `code_exchange`: its jar holds the session
/// cookie. Not measured.
pub async fn signed_in_browser(ctx: &Ctx, user: usize) -> Result<JarHandle, String> {
    let mut jar = Jar::default();
    let pkce = Pkce::generate();
    let state = random_secret();
    let inputs = login_form(ctx, &mut jar, &pkce, &state).await?;
    sign_in(ctx, &mut jar, inputs, user, &state).await?;
    Ok(JarHandle { jar, user })
}

/// A signed-in browser, handed to one `code_exchange` worker.
pub struct JarHandle {
    jar: Jar,
    user: usize,
}

/// A code by single sign-on: the browser's session skips the login page and a
/// first-party client asks no consent, so authorize answers 302 with the code.
/// A login page means the session is gone: the browser signs in again (not
/// measured) and the request counts as `sso_login_page`.
async fn sso_code(ctx: &Ctx, browser: &mut JarHandle, pkce: &Pkce) -> Result<String, String> {
    let state = random_secret();
    let url = authorize_url(ctx, pkce, &state);
    let seen = visit(ctx, &mut browser.jar, &url, None)
        .await
        .map_err(|k| format!("sso_{k}"))?;
    match seen.status {
        302 => code_from(ctx, &seen, &state).map_err(|k| format!("sso_{k}")),
        200 => {
            if let Ok(again) = signed_in_browser(ctx, browser.user).await {
                *browser = again;
            }
            Err("sso_login_page".into())
        }
        status => Err(format!("sso_http_{status}")),
    }
}

/// The rounds of `code_exchange`, shared by its workers. A round is an
/// authorize phase (the workers obtain `CODES_PER_WORKER` codes each, on average,
/// by single sign-on, each into its own pool) and an exchange phase (each worker
/// exchanges its own codes, then takes what is left in the others' pools), with
/// every worker waiting for the others between them, so that the exchange phase
/// has nothing but exchanges in flight. As the work is shared out, a phase ends
/// within about one request of its last worker becoming idle. A worker's own
/// codes come first because rotor locks a code's browser session while redeeming
/// it: in real traffic, concurrent exchanges belong to different people. A round
/// counts only if it began and ended inside the measured window; each phase's
/// times are summed over counted rounds.
pub struct Rounds {
    barrier: Barrier,
    window: Window,
    round_size: usize,
    /// Codes still to obtain in the authorize phase under way.
    to_obtain: AtomicUsize,
    /// Each worker's codes, obtained with its own session.
    pools: Vec<Mutex<Vec<(String, Pkce)>>>,
    stop: AtomicBool,
    counted: AtomicBool,
    authorize_phase_us: AtomicU64,
    authorize_total_us: AtomicU64,
    exchange_total_us: AtomicU64,
}

impl Rounds {
    pub fn new(workers: usize, window: Window) -> Rounds {
        let round_size = CODES_PER_WORKER * workers;
        Rounds {
            barrier: Barrier::new(workers),
            window,
            round_size,
            to_obtain: AtomicUsize::new(round_size),
            pools: (0..workers)
                .map(|_| Mutex::new(Vec::with_capacity(2 * CODES_PER_WORKER)))
                .collect(),
            stop: AtomicBool::new(false),
            counted: AtomicBool::new(false),
            authorize_phase_us: AtomicU64::new(0),
            authorize_total_us: AtomicU64::new(0),
            exchange_total_us: AtomicU64::new(0),
        }
    }

    /// Seconds of counted authorize phases and of counted exchange phases.
    pub fn measured_secs(&self) -> (f64, f64) {
        let secs = |us: &AtomicU64| us.load(Ordering::SeqCst) as f64 / 1e6;
        (
            secs(&self.authorize_total_us),
            secs(&self.exchange_total_us),
        )
    }

    /// Claims one code to obtain in this authorize phase.
    fn claim(&self) -> bool {
        self.to_obtain
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn pool(&self, worker: usize) -> std::sync::MutexGuard<'_, Vec<(String, Pkce)>> {
        self.pools[worker % self.pools.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The next code for `worker` to exchange: its own, else another worker's.
    fn next_code(&self, worker: usize) -> Option<(String, Pkce)> {
        (0..self.pools.len()).find_map(|k| self.pool(worker + k).pop())
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `code_exchange`: rounds of single sign-on codes, then their exchanges. Returns
/// the tallies of the authorize requests and of the exchanges in counted rounds.
pub async fn code_exchange_worker(
    ctx: Arc<Ctx>,
    rounds: Arc<Rounds>,
    worker: usize,
    mut browser: JarHandle,
) -> (Tally, Tally) {
    let mut sso_total = Tally::default();
    let mut exchange_total = Tally::default();
    loop {
        let round_start = Instant::now();
        let mut sso = Tally::default();
        while rounds.claim() {
            let pkce = Pkce::generate();
            let start = Instant::now();
            match sso_code(&ctx, &mut browser, &pkce).await {
                Ok(code) => {
                    sso.success(start.elapsed());
                    rounds.pool(worker).push((code, pkce));
                }
                Err(kind) => sso.error(&kind),
            }
        }
        if rounds.barrier.wait().await.is_leader() {
            rounds
                .authorize_phase_us
                .store(micros(round_start.elapsed()), Ordering::SeqCst);
        }

        let exchange_start = Instant::now();
        let mut exchanges = Tally::default();
        while let Some((code, pkce)) = rounds.next_code(worker) {
            let start = Instant::now();
            match exchange(&ctx, &code, &pkce).await {
                Ok(()) => exchanges.success(start.elapsed()),
                Err(kind) => exchanges.error(&kind),
            }
        }
        if rounds.barrier.wait().await.is_leader() {
            let end = Instant::now();
            let counted = rounds.window.counts(round_start) && rounds.window.counts(end);
            if counted {
                let authorize = rounds.authorize_phase_us.load(Ordering::SeqCst);
                rounds
                    .authorize_total_us
                    .fetch_add(authorize, Ordering::SeqCst);
                rounds
                    .exchange_total_us
                    .fetch_add(micros(end - exchange_start), Ordering::SeqCst);
            }
            rounds.counted.store(counted, Ordering::SeqCst);
            rounds
                .stop
                .store(end >= rounds.window.end, Ordering::SeqCst);
            rounds.to_obtain.store(rounds.round_size, Ordering::SeqCst);
        }
        // Everyone reads the leader's decisions before anyone starts a round.
        rounds.barrier.wait().await;
        if rounds.counted.load(Ordering::SeqCst) {
            sso_total.merge(sso);
            exchange_total.merge(exchanges);
        }
        if rounds.stop.load(Ordering::SeqCst) {
            return (sso_total, exchange_total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_inputs_are_read_and_unescaped() {
        let html = r#"<form method="post">
<input type="hidden" name="step" value="login">
<input type="hidden" name="request" value="response_type=code&#38;state=a&amp;b&#x3D;c">
<input id="username" name="username" type="text" value="">
</form>"#;
        assert_eq!(
            hidden_inputs(html),
            vec![
                ("step".to_owned(), "login".to_owned()),
                (
                    "request".to_owned(),
                    "response_type=code&state=a&b=c".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn the_s256_challenge_is_that_of_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let fresh = Pkce::generate();
        assert_eq!(fresh.verifier.len(), 43);
        assert_eq!(fresh.challenge, s256(&fresh.verifier));
    }

    #[test]
    fn the_jar_keeps_and_clears_cookies() {
        let mut headers = HeaderMap::new();
        headers.append(
            SET_COOKIE,
            "rotor_form=abc; Path=/; HttpOnly".parse().unwrap(),
        );
        headers.append(SET_COOKIE, "rotor_session=s1; Path=/".parse().unwrap());
        let mut jar = Jar::default();
        jar.keep(&headers);
        assert_eq!(jar.header(), "rotor_form=abc; rotor_session=s1");
        let mut cleared = HeaderMap::new();
        cleared.append(SET_COOKIE, "rotor_form=; Max-Age=0".parse().unwrap());
        jar.keep(&cleared);
        assert_eq!(jar.header(), "rotor_session=s1");
    }
}
