//! `rotor-bench`: a load generator for rotor's token endpoint that understands
//! refresh-token rotation.
//!
//! Every virtual client holds its own refresh token and presents the new one on its
//! next request, as a real client must; a 200 counts only if it carries a refresh
//! token different from the one presented. `load` provisions its own client and
//! users through the `rotor` command (against the same database as the server),
//! logs every virtual client in with the password grant, then drives the chosen
//! grant for a warm-up and a measured period. The client credentials grant needs
//! no users and no log-in: a confidential client allowed only that grant is
//! provisioned, and every worker asks for a token again and again; a 200 counts
//! only if it carries an access token and no refresh token (RFC 6749 §4.4.3). The
//! browser modes drive the authorization code flow as a browser and a public
//! client do: `browser_login` a whole first sign-in, `code_exchange` the code
//! exchange alone (see `browser`). `argon2` measures the raw argon2id
//! verification rate the password grant is compared with, and `table` turns the
//! JSON lines of several runs into one table.
//!
//! Secrets (client secret, passwords, tokens) live in memory only and are never
//! printed.

use std::{path::PathBuf, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tokio::io::AsyncWriteExt;

mod browser;
mod load;
mod report;
mod sys;

#[derive(Debug, Parser)]
#[command(name = "rotor-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive the token endpoint and print throughput, errors and latency.
    Load(Box<LoadArgs>),
    /// Measure the raw argon2id verification rate on this machine.
    Argon2(Argon2Args),
    /// Print one table from the JSON lines of `load` and `argon2` runs.
    Table(TableArgs),
}

/// Which grant the measured requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Grant {
    /// Rotate refresh tokens.
    #[value(alias = "refresh_token")]
    RefreshToken,
    /// Log in with username and password.
    Password,
    /// Refresh workers (`--concurrency`) and password workers
    /// (`--password-concurrency`) at once, reported apart.
    Mix,
    /// A confidential client obtains tokens for itself (RFC 6749 §4.4), one
    /// worker per `--concurrency`.
    #[value(name = "client_credentials", alias = "client-credentials")]
    ClientCredentials,
    /// A person's first sign-in through the browser, one per worker at a time:
    /// authorize, the login form, the code exchange (RFC 6749 §4.1, PKCE S256),
    /// with the public client `--public-client`.
    #[value(name = "browser_login", alias = "browser-login")]
    BrowserLogin,
    /// The code exchange alone: each worker signs in once (not measured), then
    /// obtains codes by single sign-on and exchanges them, in rounds whose
    /// exchange phases are measured apart from their authorize phases.
    #[value(name = "code_exchange", alias = "code-exchange")]
    CodeExchange,
}

impl Grant {
    fn as_str(self) -> &'static str {
        match self {
            Grant::RefreshToken => "refresh_token",
            Grant::Password => "password",
            Grant::Mix => "mix",
            Grant::ClientCredentials => "client_credentials",
            Grant::BrowserLogin => "browser_login",
            Grant::CodeExchange => "code_exchange",
        }
    }
}

#[derive(Debug, Parser)]
pub struct LoadArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A label for this run in the output.
    #[arg(long, default_value = "run")]
    pub label: String,
    /// Client id; with `--rotor-bin` a fresh client is created instead (for
    /// `client_credentials`, one allowed only that grant, scopes "read write").
    #[arg(long)]
    pub client_id: Option<String>,
    /// Environment variable holding the client secret (a secret is never taken
    /// from the command line, where `ps` shows it).
    #[arg(long, default_value = "ROTOR_BENCH_CLIENT_SECRET")]
    pub client_secret_env: String,
    /// Username to log in with when not provisioning (not used by
    /// `client_credentials`).
    #[arg(long)]
    pub username: Option<String>,
    /// Environment variable holding that user's password.
    #[arg(long, default_value = "ROTOR_BENCH_PASSWORD")]
    pub password_env: String,
    /// Provision a client and users by running this `rotor` binary (it reads the
    /// same configuration and ROTOR__* environment as the server).
    #[arg(long)]
    pub rotor_bin: Option<PathBuf>,
    /// `--config` for the `rotor` binary.
    #[arg(long)]
    pub rotor_config: Option<PathBuf>,
    /// Users to provision; virtual clients log in as user `i % users`
    /// (none for `client_credentials`).
    #[arg(long, default_value_t = 16)]
    pub users: usize,
    /// Virtual clients, each with its own refresh token (at least `--concurrency`;
    /// `client_credentials` has one per worker, as it keeps no token).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Requests in flight at once (refresh workers in `mix`).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Password-grant workers in `mix`.
    #[arg(long, default_value_t = 8)]
    pub password_concurrency: usize,
    /// The public client of `browser_login` and `code_exchange`: first-party,
    /// allowed `authorization_code` and `refresh_token`, registered beforehand
    /// (`rotor client add ID --public --grants authorization_code,refresh_token
    /// --redirect-uri URI`).
    #[arg(long, default_value = "benchspa")]
    pub public_client: String,
    /// Its redirect URI; the code is read from the redirect, which is never followed.
    #[arg(long, default_value = "http://127.0.0.1/callback")]
    pub redirect_uri: String,
    /// Grant to measure.
    #[arg(long, value_enum, default_value = "refresh-token")]
    pub grant: Grant,
    /// Measured period.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Unmeasured period before it.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// PID of the server, to report its CPU time and peak resident set.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Send a fresh DPoP proof (RFC 9449, ES256) with every token request of the
    /// password and refresh modes: the access tokens come DPoP-bound, and each
    /// refresh records its proof in the rotation.
    #[arg(long)]
    pub dpop: bool,
}

#[derive(Debug, Parser)]
struct Argon2Args {
    /// Verifying threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Memory cost in KiB.
    #[arg(long, default_value_t = 19456)]
    memory_kib: u32,
    /// Iterations.
    #[arg(long, default_value_t = 2)]
    iterations: u32,
    /// Lanes.
    #[arg(long, default_value_t = 1)]
    parallelism: u32,
    /// Measured period.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    duration: Duration,
}

#[derive(Debug, Parser)]
struct TableArgs {
    /// File of JSON lines written by `load` and `argon2`.
    results: PathBuf,
    /// pgbench transactions per second of one rotation, measured in the same run.
    #[arg(long)]
    limit: Option<f64>,
    /// pgbench transactions per second of the one-statement rotation.
    #[arg(long)]
    limit_one_statement: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(load::run(*args))
        }
        Command::Argon2(args) => argon2_rate(&args),
        Command::Table(args) => report::table(&args.results, args.limit, args.limit_one_statement),
    }
}

/// Verifies one argon2id hash on every thread for the period and prints the rate.
fn argon2_rate(args: &Argon2Args) -> anyhow::Result<()> {
    use argon2::{
        Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
        password_hash::{SaltString, rand_core::OsRng},
    };
    let params = Params::new(args.memory_kib, args.iterations, args.parallelism, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let password = random_secret();
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
        .to_string();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let deadline = std::time::Instant::now() + args.duration;
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let hash = hash.clone();
            let password = password.clone();
            std::thread::spawn(move || {
                let mut done = 0u64;
                while std::time::Instant::now() < deadline {
                    let Ok(parsed) = PasswordHash::new(&hash) else {
                        return done;
                    };
                    // The same call rotor makes: parameters come from the hash.
                    if Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                    {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut total = 0u64;
    for h in handles {
        total += h
            .join()
            .map_err(|_| anyhow::anyhow!("a verifying thread panicked"))?;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = total as f64 / secs;
    println!(
        "argon2id m={} t={} p={}: {total} verifications on {threads} threads in {secs:.1}s = {rate:.1}/s",
        args.memory_kib, args.iterations, args.parallelism
    );
    println!(
        "{}",
        serde_json::json!({
            "kind": "argon2",
            "memory_kib": args.memory_kib,
            "iterations": args.iterations,
            "parallelism": args.parallelism,
            "threads": threads,
            "rate": rate,
        })
    );
    Ok(())
}

/// 32 random bytes as unpadded base64url (43 characters).
pub fn random_secret() -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Runs `rotor ARGS… --config FILE` with `secret` on standard input.
pub async fn rotor_cli(
    bin: &PathBuf,
    config: Option<&PathBuf>,
    args: &[&str],
    secret: &str,
) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(secret.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "`rotor {}` failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
