//! The `load` command: provisioning, log-in, workers, and the report of one run.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;

use crate::{Grant, LoadArgs, browser, random_secret, rotor_cli, sys};

/// Password logins in flight at once while the virtual clients log in. rotor
/// counts sign-ins in progress per client address against its lockout limit
/// (`lockout.max_failures_per_ip`, 50 by default) and answers a larger burst with
/// 503 temporarily_unavailable; logging in is not measured, so it stays below.
pub(crate) const LOGIN_CONCURRENCY: usize = 16;

/// What every worker shares.
pub(crate) struct Ctx {
    pub(crate) http: reqwest::Client,
    pub(crate) token_url: String,
    /// `Basic …`, built once.
    authorization: String,
    /// (username, password) pairs; virtual client `i` logs in as user `i % len`.
    pub(crate) users: Vec<(String, String)>,
    /// `/oauth2/authorize` of the server.
    pub(crate) authorize_url: String,
    /// The public client of the browser modes, and its redirect URI.
    pub(crate) public_client: String,
    pub(crate) redirect_uri: String,
    /// The key of `--dpop` proofs.
    dpop: Option<DpopKey>,
}

/// A P-256 key whose proofs (RFC 9449 §4.2) go with every token request of a
/// `--dpop` run; each proof has its own `jti`.
///
/// The proofs of the warm-up and the measured period are signed before them
/// ([`DpopKey::presign`]), so that the generator's signing does not compete with
/// rotor for the machine's cores while it is measured: what is compared with a
/// plain refresh is rotor's cost of a proof, not the client's. Each proof still
/// has its own `jti`, and the `iat` of its signing; one is sent while at most
/// [`PRESIGNED_MAX_AGE`] old (rotor's default `dpop.proof_max_age` is 60 s), and
/// beyond the pool or that age a proof is signed at the request.
pub(crate) struct DpopKey {
    key: p256::ecdsa::SigningKey,
    /// The encoded JOSE header, the same for every proof.
    header: String,
    /// Proofs signed in advance for one URL, the newest last.
    ready: std::sync::Mutex<Presigned>,
}

#[derive(Default)]
struct Presigned {
    htu: String,
    signed_at: Option<Instant>,
    proofs: Vec<String>,
}

/// The oldest a pre-signed proof is sent.
const PRESIGNED_MAX_AGE: Duration = Duration::from_secs(40);

/// Proofs signed in advance per second of a run: above any rate seen here.
const PRESIGNED_PER_SECOND: f64 = 4000.0;

impl DpopKey {
    fn generate() -> DpopKey {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let point = key.verifying_key().to_encoded_point(false);
        let (x, y) = (point.x().map(|x| x.to_vec()), point.y().map(|y| y.to_vec()));
        let header = serde_json::json!({
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": {
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x.unwrap_or_default()),
                "y": URL_SAFE_NO_PAD.encode(y.unwrap_or_default()),
            },
        });
        DpopKey {
            key,
            header: URL_SAFE_NO_PAD.encode(header.to_string()),
            ready: std::sync::Mutex::default(),
        }
    }

    /// Signs the proofs for `POST htu` of a run of `period`, and says how many.
    fn presign(&self, htu: &str, period: Duration) -> usize {
        let period = period.min(PRESIGNED_MAX_AGE);
        // Truncation is fine: a count of proofs.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let count = (period.as_secs_f64() * PRESIGNED_PER_SECOND) as usize;
        let signed_at = Instant::now();
        let proofs = (0..count).map(|_| self.sign(htu)).collect();
        *self
            .ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Presigned {
            htu: htu.to_owned(),
            signed_at: Some(signed_at),
            proofs,
        };
        count
    }

    /// A proof for `POST htu`: one signed in advance while there is a fresh one.
    fn proof(&self, htu: &str) -> String {
        let mut ready = self
            .ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = ready
            .signed_at
            .is_some_and(|at| at.elapsed() < PRESIGNED_MAX_AGE);
        if fresh
            && ready.htu == htu
            && let Some(proof) = ready.proofs.pop()
        {
            return proof;
        }
        drop(ready);
        self.sign(htu)
    }

    /// A proof for `POST htu`, signed now.
    fn sign(&self, htu: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use p256::ecdsa::{Signature, signature::Signer};
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = serde_json::json!({
            "jti": crate::random_secret(),
            "htm": "POST",
            "htu": htu,
            "iat": iat,
        });
        let input = format!(
            "{}.{}",
            self.header,
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// One virtual client: its user and its current refresh token.
struct VirtualClient {
    user: usize,
    refresh: String,
}

/// The measured period: requests that complete inside it are counted.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    pub(crate) measure_from: Instant,
    pub(crate) end: Instant,
}

impl Window {
    pub(crate) fn counts(&self, done: Instant) -> bool {
        done >= self.measure_from && done <= self.end
    }
}

/// Counts and latencies of one grant.
#[derive(Default)]
pub struct Tally {
    ok: u64,
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    pub(crate) fn success(&mut self, latency: Duration) {
        self.ok += 1;
        self.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    pub(crate) fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    /// Throughput, errors and latency percentiles as JSON.
    pub(crate) fn summary(&mut self, secs: f64) -> serde_json::Value {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * self.latencies_us.len() as f64).ceil() as usize;
            let i = rank.clamp(1, self.latencies_us.len()) - 1;
            f64::from(self.latencies_us[i]) / 1000.0
        };
        serde_json::json!({
            "ok": self.ok,
            "throughput": self.ok as f64 / secs,
            "errors": self.errors,
            "mean_ms": if self.latencies_us.is_empty() {
                0.0
            } else {
                self.latencies_us.iter().map(|&us| f64::from(us)).sum::<f64>()
                    / self.latencies_us.len() as f64
                    / 1000.0
            },
            "p50_ms": pct(50.0),
            "p90_ms": pct(90.0),
            "p99_ms": pct(99.0),
            "max_ms": pct(100.0),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenBody {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A transport failure as its kind.
pub(crate) fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connect".to_owned()
    } else {
        "transport".to_owned()
    }
}

/// Posts a form to the token endpoint. A failure comes back as its kind: the
/// transport error or `http_STATUS_CODE`.
async fn post_token(ctx: &Ctx, body: String) -> Result<TokenBody, String> {
    let mut request = ctx
        .http
        .post(&ctx.token_url)
        .header(AUTHORIZATION, &ctx.authorization);
    if let Some(key) = &ctx.dpop {
        request = request.header("DPoP", key.proof(&ctx.token_url));
    }
    send_token_request(request, body).await
}

/// Sends a token request with this form body and reads the token response; a
/// failure comes back as its kind, as from `post_token`.
pub(crate) async fn send_token_request(
    request: reqwest::RequestBuilder,
    body: String,
) -> Result<TokenBody, String> {
    let resp = request
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| transport_kind(&e))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|_| "body".to_owned())?;
    if status.is_success() {
        serde_json::from_slice(&bytes).map_err(|_| "bad_json".to_owned())
    } else {
        let code = serde_json::from_slice::<ErrorBody>(&bytes)
            .map_or_else(|_| "no_error_code".to_owned(), |e| e.error);
        Err(format!("http_{}_{code}", status.as_u16()))
    }
}

async fn password_grant(ctx: &Ctx, user: usize) -> Result<TokenBody, String> {
    let (name, password) = &ctx.users[user % ctx.users.len()];
    post_token(
        ctx,
        format!(
            "grant_type=password&username={}&password={}",
            form_encode(name),
            form_encode(password)
        ),
    )
    .await
}

/// Logs a virtual client in; its chain of refresh tokens starts here.
async fn login(ctx: &Ctx, user: usize) -> Result<String, String> {
    match password_grant(ctx, user).await?.refresh_token {
        Some(rt) if !rt.is_empty() => Ok(rt),
        _ => Err("no_refresh_token".to_owned()),
    }
}

async fn refresh_worker(ctx: Arc<Ctx>, mut clients: Vec<VirtualClient>, w: Window) -> Tally {
    let mut t = Tally::default();
    let mut next = 0usize;
    while Instant::now() < w.end && !clients.is_empty() {
        let len = clients.len();
        let vc = &mut clients[next % len];
        next = next.wrapping_add(1);
        let body = format!(
            "grant_type=refresh_token&refresh_token={}",
            form_encode(&vc.refresh)
        );
        let start = Instant::now();
        let result = post_token(&ctx, body).await;
        let done = Instant::now();
        let counts = w.counts(done);
        let failure = match result {
            // Only a new refresh token keeps the chain going.
            Ok(TokenBody {
                refresh_token: Some(new),
                ..
            }) if !new.is_empty() && new != vc.refresh => {
                vc.refresh = new;
                if counts {
                    t.success(done - start);
                }
                continue;
            }
            Ok(_) => "no_new_refresh_token".to_owned(),
            Err(kind) => kind,
        };
        if counts {
            t.error(&failure);
        }
        // The chain is broken: start a new one, as a real client would.
        match login(&ctx, vc.user).await {
            Ok(rt) => vc.refresh = rt,
            Err(_) => {
                if counts {
                    t.error("relogin_failed");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    t
}

async fn password_worker(ctx: Arc<Ctx>, first_user: usize, stride: usize, w: Window) -> Tally {
    let mut t = Tally::default();
    let mut user = first_user;
    let mut last = String::new();
    while Instant::now() < w.end {
        let start = Instant::now();
        let result = password_grant(&ctx, user).await;
        user = user.wrapping_add(stride);
        let done = Instant::now();
        if !w.counts(done) {
            continue;
        }
        match result {
            Ok(TokenBody {
                refresh_token: Some(new),
                ..
            }) if !new.is_empty() && new != last => {
                last = new;
                t.success(done - start);
            }
            Ok(_) => t.error("no_new_refresh_token"),
            Err(kind) => t.error(&kind),
        }
    }
    t
}

/// Asks for a token with the client's own credentials, again and again. Nothing
/// carries over from one request to the next, so a failure needs no recovery.
async fn client_credentials_worker(ctx: Arc<Ctx>, w: Window) -> Tally {
    let mut t = Tally::default();
    while Instant::now() < w.end {
        let start = Instant::now();
        let result = post_token(&ctx, "grant_type=client_credentials".to_owned()).await;
        let done = Instant::now();
        if !w.counts(done) {
            continue;
        }
        match result {
            // RFC 6749 §4.4.3: an access token and no refresh token.
            Ok(TokenBody {
                access_token,
                refresh_token: None,
            }) if !access_token.is_empty() => t.success(done - start),
            Ok(TokenBody {
                refresh_token: Some(_),
                ..
            }) => t.error("refresh_token_issued"),
            Ok(_) => t.error("no_access_token"),
            Err(kind) => t.error(&kind),
        }
    }
    t
}

/// Creates a client and `n` users through the `rotor` command; for
/// `client_credentials`, a client allowed only that grant and no users; for the
/// browser modes, users only (their public client is registered beforehand).
async fn provision(args: &LoadArgs) -> anyhow::Result<(String, String, Vec<(String, String)>)> {
    let client_credentials = args.grant == Grant::ClientCredentials;
    let browser = matches!(args.grant, Grant::BrowserLogin | Grant::CodeExchange);
    let Some(bin) = &args.rotor_bin else {
        let (id, secret) = if browser {
            (String::new(), String::new())
        } else {
            let id = args
                .client_id
                .clone()
                .context("--client-id or --rotor-bin is required")?;
            let secret = std::env::var(&args.client_secret_env)
                .with_context(|| format!("{} is not set", args.client_secret_env))?;
            (id, secret)
        };
        if client_credentials {
            return Ok((id, secret, Vec::new()));
        }
        let user = args
            .username
            .clone()
            .context("--username or --rotor-bin is required")?;
        let password = std::env::var(&args.password_env)
            .with_context(|| format!("{} is not set", args.password_env))?;
        return Ok((id, secret, vec![(user, password)]));
    };
    let config = args.rotor_config.as_ref();
    let tag = &random_secret()[..8]
        .to_ascii_lowercase()
        .replace(['-', '_'], "x");
    let (client_id, secret) = if browser {
        (String::new(), String::new())
    } else {
        let client_id = format!("bench-{tag}");
        let secret = random_secret();
        let grants: &[&str] = if client_credentials {
            &["--grants", "client_credentials", "--scopes", "read write"]
        } else {
            &["--grants", "password,refresh_token"]
        };
        let mut cli = vec!["client", "add", &client_id, "--secret-stdin"];
        cli.extend_from_slice(grants);
        rotor_cli(bin, config, &cli, &secret).await?;
        (client_id, secret)
    };
    if client_credentials {
        return Ok((client_id, secret, Vec::new()));
    }
    let mut users = Vec::with_capacity(args.users);
    for i in 0..args.users.max(1) {
        let name = format!("bench-{tag}-{i}");
        let password = random_secret();
        rotor_cli(
            bin,
            config,
            &["user", "add", &name, "--password-stdin"],
            &password,
        )
        .await?;
        users.push((name, password));
    }
    Ok((client_id, secret, users))
}

/// Runs one load test and prints its report and a final JSON line.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let concurrency = args.concurrency.max(1);
    let password_concurrency = match args.grant {
        Grant::Password => concurrency,
        Grant::Mix => args.password_concurrency.max(1),
        _ => 0,
    };
    let refresh_concurrency = match args.grant {
        Grant::RefreshToken | Grant::Mix => concurrency,
        _ => 0,
    };
    let only = |grant: Grant| if args.grant == grant { concurrency } else { 0 };
    let client_credentials_concurrency = only(Grant::ClientCredentials);
    let browser_login_concurrency = only(Grant::BrowserLogin);
    let code_exchange_concurrency = only(Grant::CodeExchange);
    let (client_id, secret, users) = provision(&args).await?;
    let base = args.url.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency.max(refresh_concurrency + password_concurrency))
        // The browser modes read the code from the redirect; nothing else redirects.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    let ctx = Arc::new(Ctx {
        http,
        token_url: format!("{base}/oauth2/token"),
        authorization: format!(
            "Basic {}",
            STANDARD.encode(format!(
                "{}:{}",
                form_encode(&client_id),
                form_encode(&secret)
            ))
        ),
        users,
        authorize_url: format!("{base}/oauth2/authorize"),
        public_client: args.public_client.clone(),
        redirect_uri: args.redirect_uri.clone(),
        dpop: args.dpop.then(DpopKey::generate),
    });

    // Log every virtual client in, at most LOGIN_CONCURRENCY at a time, then
    // give virtual client `i` to refresh worker `i % concurrency`.
    let clients = if refresh_concurrency > 0 {
        args.clients.max(refresh_concurrency)
    } else {
        0
    };
    let login_started = Instant::now();
    let login_tasks = refresh_concurrency.min(LOGIN_CONCURRENCY);
    let mut logins = tokio::task::JoinSet::new();
    for first in 0..login_tasks {
        let ctx = ctx.clone();
        logins.spawn(async move {
            let mut out = Vec::new();
            for user in (first..clients).step_by(login_tasks) {
                let refresh = login(&ctx, user).await?;
                out.push(VirtualClient { user, refresh });
            }
            Ok::<_, String>(out)
        });
    }
    let mut assigned: Vec<Vec<VirtualClient>> =
        (0..refresh_concurrency).map(|_| Vec::new()).collect();
    while let Some(done) = logins.join_next().await {
        match done.context("login task")? {
            Ok(logged_in) => {
                for vc in logged_in {
                    assigned[vc.user % refresh_concurrency].push(vc);
                }
            }
            Err(kind) => bail!("logging the virtual clients in failed: {kind}"),
        }
    }
    if clients > 0 {
        eprintln!(
            "{}: {clients} virtual clients logged in in {:.1}s",
            args.label,
            login_started.elapsed().as_secs_f64()
        );
    }

    // Sign every code_exchange worker's browser in once, as many at a time as the
    // virtual clients above.
    let mut browsers = Vec::with_capacity(code_exchange_concurrency);
    if code_exchange_concurrency > 0 {
        let started = Instant::now();
        let tasks = code_exchange_concurrency.min(LOGIN_CONCURRENCY);
        let mut sign_ins = tokio::task::JoinSet::new();
        for first in 0..tasks {
            let ctx = ctx.clone();
            sign_ins.spawn(async move {
                let mut out = Vec::new();
                for user in (first..code_exchange_concurrency).step_by(tasks) {
                    out.push(browser::signed_in_browser(&ctx, user).await?);
                }
                Ok::<_, String>(out)
            });
        }
        while let Some(done) = sign_ins.join_next().await {
            match done.context("sign-in task")? {
                Ok(signed_in) => browsers.extend(signed_in),
                Err(kind) => bail!("signing the browsers in failed: {kind}"),
            }
        }
        eprintln!(
            "{}: {code_exchange_concurrency} browsers signed in in {:.1}s",
            args.label,
            started.elapsed().as_secs_f64()
        );
    }

    if let Some(key) = &ctx.dpop {
        let started = Instant::now();
        let count = key.presign(&ctx.token_url, args.warmup + args.duration);
        eprintln!(
            "{}: {count} DPoP proofs signed before the run in {:.1}s",
            args.label,
            started.elapsed().as_secs_f64()
        );
    }
    let now = Instant::now();
    let window = Window {
        measure_from: now + args.warmup,
        end: now + args.warmup + args.duration,
    };
    let mut refresh_tasks = tokio::task::JoinSet::new();
    for group in assigned {
        refresh_tasks.spawn(refresh_worker(ctx.clone(), group, window));
    }
    let mut password_tasks = tokio::task::JoinSet::new();
    for w in 0..password_concurrency {
        password_tasks.spawn(password_worker(
            ctx.clone(),
            w,
            password_concurrency,
            window,
        ));
    }
    let mut client_credentials_tasks = tokio::task::JoinSet::new();
    for _ in 0..client_credentials_concurrency {
        client_credentials_tasks.spawn(client_credentials_worker(ctx.clone(), window));
    }
    let mut browser_login_tasks = tokio::task::JoinSet::new();
    for w in 0..browser_login_concurrency {
        browser_login_tasks.spawn(browser::browser_login_worker(
            ctx.clone(),
            w,
            browser_login_concurrency,
            window,
        ));
    }
    let rounds = Arc::new(browser::Rounds::new(code_exchange_concurrency, window));
    let mut code_exchange_tasks = tokio::task::JoinSet::new();
    for (w, b) in browsers.into_iter().enumerate() {
        code_exchange_tasks.spawn(browser::code_exchange_worker(
            ctx.clone(),
            rounds.clone(),
            w,
            b,
        ));
    }

    tokio::time::sleep_until(window.measure_from.into()).await;
    let before = sys::Sample::take(args.server_pid);
    tokio::time::sleep_until(window.end.into()).await;
    let after = sys::Sample::take(args.server_pid);

    let mut refresh = Tally::default();
    while let Some(t) = refresh_tasks.join_next().await {
        refresh.merge(t.context("refresh worker")?);
    }
    let mut password = Tally::default();
    while let Some(t) = password_tasks.join_next().await {
        password.merge(t.context("password worker")?);
    }
    let mut client_credentials = Tally::default();
    while let Some(t) = client_credentials_tasks.join_next().await {
        client_credentials.merge(t.context("client credentials worker")?);
    }

    let mut browser_login = Tally::default();
    while let Some(t) = browser_login_tasks.join_next().await {
        browser_login.merge(t.context("browser login worker")?);
    }
    let mut sso_authorize = Tally::default();
    let mut code_exchange = Tally::default();
    while let Some(t) = code_exchange_tasks.join_next().await {
        let (sso, exchanges) = t.context("code exchange worker")?;
        sso_authorize.merge(sso);
        code_exchange.merge(exchanges);
    }

    let secs = (window.end - window.measure_from).as_secs_f64();
    let usage = sys::Usage::between(&before, &after, secs);
    let mut results = serde_json::Map::new();
    if refresh_concurrency > 0 {
        results.insert("refresh_token".into(), refresh.summary(secs));
    }
    if password_concurrency > 0 {
        results.insert("password".into(), password.summary(secs));
    }
    if client_credentials_concurrency > 0 {
        results.insert(
            "client_credentials".into(),
            client_credentials.summary(secs),
        );
    }
    if browser_login_concurrency > 0 {
        results.insert("browser_login".into(), browser_login.summary(secs));
    }
    if code_exchange_concurrency > 0 {
        // Each figure over the time of its own phases: the exchange rate is that
        // of a server with nothing but exchanges in flight.
        let (authorize_secs, exchange_secs) = rounds.measured_secs();
        if exchange_secs <= 0.0 {
            bail!("no whole round fitted in the measured period; lengthen --duration");
        }
        for (name, mut tally, phase_secs) in [
            ("sso_authorize", sso_authorize, authorize_secs),
            ("code_exchange", code_exchange, exchange_secs),
        ] {
            let mut summary = tally.summary(phase_secs);
            summary["measured_s"] = phase_secs.into();
            results.insert(name.into(), summary);
        }
    }
    let report = serde_json::json!({
        "kind": "load",
        "label": args.label,
        "grant": args.grant.as_str(),
        "concurrency": concurrency,
        "password_concurrency": if args.grant == Grant::Mix { password_concurrency } else { 0 },
        // A client credentials worker keeps no token and a browser worker one
        // session at most: each is its own virtual client.
        "clients": clients.max(
            client_credentials_concurrency + browser_login_concurrency + code_exchange_concurrency
        ),
        "duration_s": secs,
        "results": results,
        "bench_cpu_cores": usage.bench_cores,
        "bench_cpu_share": usage.bench_share,
        "server_cpu_cores": usage.server_cores,
        "server_rss_mib": usage.server_rss_mib,
        "server_rss_peak_mib": usage.server_rss_peak_mib,
        "machine_busy": usage.machine_busy,
    });
    print_human(&report);
    println!("{report}");
    Ok(())
}

fn print_human(r: &serde_json::Value) {
    println!(
        "{} grant={} concurrency={} clients={} measured {:.1}s",
        r["label"].as_str().unwrap_or_default(),
        r["grant"].as_str().unwrap_or_default(),
        r["concurrency"],
        r["clients"],
        r["duration_s"].as_f64().unwrap_or_default()
    );
    if let Some(results) = r["results"].as_object() {
        for (grant, s) in results {
            println!(
                "  {grant:<18} {:>9.1} req/s  ok={}  p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms  errors={}",
                s["throughput"].as_f64().unwrap_or_default(),
                s["ok"],
                s["p50_ms"].as_f64().unwrap_or_default(),
                s["p90_ms"].as_f64().unwrap_or_default(),
                s["p99_ms"].as_f64().unwrap_or_default(),
                s["max_ms"].as_f64().unwrap_or_default(),
                s["errors"]
            );
        }
    }
    println!(
        "  generator CPU {:.2} cores ({:.0}% of the machine); server CPU {:.2} cores, RSS {:.1} MiB (peak {:.1} MiB); machine busy {:.0}%",
        r["bench_cpu_cores"].as_f64().unwrap_or_default(),
        100.0 * r["bench_cpu_share"].as_f64().unwrap_or_default(),
        r["server_cpu_cores"].as_f64().unwrap_or_default(),
        r["server_rss_mib"].as_f64().unwrap_or_default(),
        r["server_rss_peak_mib"].as_f64().unwrap_or_default(),
        100.0 * r["machine_busy"].as_f64().unwrap_or_default(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_keeps_unreserved_characters_only() {
        assert_eq!(form_encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(form_encode("a b+c/="), "a%20b%2Bc%2F%3D");
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut t = Tally::default();
        for ms in 1..=100u64 {
            t.success(Duration::from_millis(ms));
        }
        let s = t.summary(1.0);
        assert_eq!(s["p50_ms"], 50.0);
        assert_eq!(s["p99_ms"], 99.0);
        assert_eq!(s["max_ms"], 100.0);
        assert_eq!(s["throughput"], 100.0);
    }
}
