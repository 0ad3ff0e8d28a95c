//! The `table` command: one table from the JSON lines of several runs, with the
//! refresh throughput as a ratio of the pgbench limit measured in the same run,
//! the browser modes as ratios of the run before them on the same server
//! (`browser_login` of the password grant, `code_exchange` of the refresh), and
//! the targets checked.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_default()
}

/// Prints the table and the target checks.
pub fn table(path: &Path, limit: Option<f64>, limit_one: Option<f64>) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let argon2 = rows
        .iter()
        .find(|r| r["kind"] == "argon2")
        .map(|r| f(&r["rate"]));

    println!(
        "| store | grant | conc. | req/s | of limit | p50 ms | p90 ms | p99 ms | max ms | errors | rotor CPU | rotor RSS peak | generator CPU |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (at, r) in rows.iter().enumerate().filter(|(_, r)| r["kind"] == "load") {
        let Some(results) = r["results"].as_object() else {
            continue;
        };
        for (grant, s) in results {
            let rate = f(&s["throughput"]);
            let ratio = match grant.as_str() {
                "refresh_token" => limit.map(|l| format!("{:.0} %", 100.0 * rate / l)),
                "password" => argon2.map(|a| format!("{:.0} % argon2", 100.0 * rate / a)),
                "browser_login" => paired(&rows, at, "password", "password")
                    .map(|p| format!("{:.0} % password", 100.0 * rate / p)),
                "code_exchange" => paired(&rows, at, "refresh_token", "refresh_token")
                    .map(|p| format!("{:.0} % refresh", 100.0 * rate / p)),
                _ => None,
            };
            let label = if r["grant"] == "mix" {
                format!("{grant} (mix, +{} password)", r["password_concurrency"])
            } else {
                grant.clone()
            };
            let errors: u64 = s["errors"]
                .as_object()
                .map(|e| e.values().filter_map(Value::as_u64).sum())
                .unwrap_or_default();
            println!(
                "| {} | {label} | {} | {rate:.0} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {errors} | {:.2} cores | {:.1} MiB | {:.0} % |",
                r["label"].as_str().unwrap_or_default(),
                r["concurrency"],
                ratio.unwrap_or_else(|| "-".into()),
                f(&s["p50_ms"]),
                f(&s["p90_ms"]),
                f(&s["p99_ms"]),
                f(&s["max_ms"]),
                f(&r["server_cpu_cores"]),
                f(&r["server_rss_peak_mib"]),
                100.0 * f(&r["bench_cpu_share"]),
            );
        }
    }
    println!();
    if let Some(l) = limit {
        println!("pgbench limit, one rotation as rotor's statements: {l:.0} tx/s");
    }
    if let Some(l) = limit_one {
        println!("pgbench, one rotation as one statement:              {l:.0} tx/s");
    }
    if let Some(a) = argon2 {
        println!("raw argon2id verification rate (same parameters):   {a:.1}/s");
    }
    println!();
    println!("Targets:");
    for line in checks(&rows, limit, argon2) {
        println!("{line}");
    }
    Ok(())
}

/// The figure `key` of `grant` in the first run matching `label`, `grant kind`
/// and `concurrency`.
fn find(rows: &[Value], label: &str, kind: &str, conc: u64, grant: &str, key: &str) -> Option<f64> {
    rows.iter()
        .find(|r| {
            r["kind"] == "load"
                && r["label"] == label
                && r["grant"] == kind
                && r["concurrency"].as_u64() == Some(conc)
        })
        .and_then(|r| r["results"][grant][key].as_f64())
}

/// The throughput of `result` in the last run before `rows[at]` of grant `kind`
/// with the same label and concurrency: the run on the same server that a browser
/// mode is compared with.
fn paired(rows: &[Value], at: usize, kind: &str, result: &str) -> Option<f64> {
    let this = rows.get(at)?;
    rows[..at]
        .iter()
        .rev()
        .find(|r| {
            r["kind"] == "load"
                && r["label"] == this["label"]
                && r["grant"] == kind
                && r["concurrency"] == this["concurrency"]
        })
        .and_then(|r| r["results"][result]["throughput"].as_f64())
}

/// (this run's throughput of `grant`, its pair's throughput of `result`) for the
/// first `grant` run labelled `label`.
fn browser_pair(
    rows: &[Value],
    label: &str,
    grant: &str,
    kind: &str,
    result: &str,
) -> Option<(f64, f64)> {
    let at = rows
        .iter()
        .position(|r| r["kind"] == "load" && r["label"] == label && r["grant"] == grant)?;
    let rate = rows[at]["results"][grant]["throughput"].as_f64()?;
    Some((rate, paired(rows, at, kind, result)?))
}

/// One target line: MET, NOT MET, or not measured.
fn check(
    name: &str,
    value: Option<f64>,
    target: Option<f64>,
    ok: impl Fn(f64, f64) -> bool,
) -> String {
    match value.zip(target) {
        Some((v, t)) => format!(
            "{} {name}: {v:.2} (target {t:.2})",
            if ok(v, t) { "MET    " } else { "NOT MET" }
        ),
        None => format!("-       {name}: not measured"),
    }
}

/// The target lines, in the order they are printed.
fn checks(rows: &[Value], limit: Option<f64>, argon2: Option<f64>) -> Vec<String> {
    let pg = find(
        rows,
        "postgres",
        "refresh_token",
        16,
        "refresh_token",
        "throughput",
    );
    let pg_p99 = find(
        rows,
        "postgres",
        "refresh_token",
        16,
        "refresh_token",
        "p99_ms",
    );
    let sqlite = find(
        rows,
        "sqlite",
        "refresh_token",
        16,
        "refresh_token",
        "throughput",
    );
    let sqlite_p99 = find(
        rows,
        "sqlite",
        "refresh_token",
        16,
        "refresh_token",
        "p99_ms",
    );
    let pg_client_credentials = find(
        rows,
        "postgres",
        "client_credentials",
        16,
        "client_credentials",
        "throughput",
    );
    let password = rows
        .iter()
        .find(|r| r["kind"] == "load" && r["grant"] == "password")
        .and_then(|r| r["results"]["password"]["throughput"].as_f64());
    let mix_p99 = find(rows, "postgres", "mix", 16, "refresh_token", "p99_ms");
    // The idle refresh run on the same server as the mix, else the first one.
    let idle_p99 = find(
        rows,
        "postgres-idle",
        "refresh_token",
        16,
        "refresh_token",
        "p99_ms",
    )
    .or(pg_p99);
    let rss = rows
        .iter()
        .filter_map(|r| r["server_rss_peak_mib"].as_f64())
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let mut lines = vec![
        check(
            "postgres refresh, share of the pgbench limit at c=16",
            pg.zip(limit).map(|(p, l)| p / l),
            Some(0.60),
            |v, t| v >= t,
        ),
        check(
            "postgres refresh p99 at c=16, ms",
            pg_p99,
            Some(15.0),
            |v, t| v < t,
        ),
        check(
            "SQLite refresh ≥ PostgreSQL refresh at c=16, req/s (target: postgres)",
            sqlite,
            pg,
            |v, t| v >= t,
        ),
        // Both stores or not measured: the worse of the two decides.
        check(
            "p99 under 20 ms at c=16 for refresh on both stores, ms (the higher of the two)",
            pg_p99.zip(sqlite_p99).map(|(p, s)| p.max(s)),
            Some(20.0),
            |v, t| v < t,
        ),
        check(
            "client_credentials ≥ 2,000 grants/s on PostgreSQL at c=16, grants/s",
            pg_client_credentials,
            Some(2000.0),
            |v, t| v >= t,
        ),
        check(
            "password grant, share of the raw argon2id rate",
            password.zip(argon2).map(|(p, a)| p / a),
            Some(0.90),
            |v, t| v >= t,
        ),
        check(
            "refresh p99 while passwords saturate hashing, ms (target: 3x idle)",
            mix_p99,
            idle_p99.map(|p| 3.0 * p),
            |v, t| v <= t,
        ),
        check("rotor peak RSS, MiB", rss, Some(80.0), |v, t| v < t),
        // RFC 9449 on the refresh path: a proof verified and its jti recorded in
        // the rotation's own statement, against plain refreshes on the same server.
        check(
            "DPoP refresh on PostgreSQL, share of a plain refresh at c=16",
            find(
                rows,
                "postgres-dpop",
                "refresh_token",
                16,
                "refresh_token",
                "throughput",
            )
            .zip(find(
                rows,
                "postgres-plain",
                "refresh_token",
                16,
                "refresh_token",
                "throughput",
            ))
            .map(|(dpop, plain)| dpop / plain),
            Some(0.70),
            |v, t| v >= t,
        ),
    ];
    for store in ["postgres", "sqlite"] {
        // Cost at equal concurrency, with hashing the bottleneck of both: the
        // password grants per second over the browser logins per second.
        lines.push(check(
            &format!(
                "browser login on {store} within 1.2x the cost of a password grant (password/s over logins/s)"
            ),
            browser_pair(rows, store, "browser_login", "password", "password")
                .map(|(login, password)| password / login),
            Some(1.2),
            |v, t| v <= t,
        ));
    }
    for store in ["postgres", "sqlite"] {
        lines.push(check(
            &format!(
                "code exchange on {store} at the speed of a refresh (exchanges/s over refreshes/s)"
            ),
            browser_pair(
                rows,
                store,
                "code_exchange",
                "refresh_token",
                "refresh_token",
            )
            .map(|(exchange, refresh)| exchange / refresh),
            Some(1.0),
            |v, t| v >= t,
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_modes_are_compared_with_the_run_before_them_on_the_same_server() {
        let mut early = run("postgres", "password", "password", 50.0, 90.0);
        let mut password = run("postgres", "password", "password", 100.0, 50.0);
        let mut login = run("postgres", "browser_login", "browser_login", 80.0, 60.0);
        for r in [&mut early, &mut password, &mut login] {
            r["concurrency"] = 4.into();
        }
        let rows = vec![
            early,
            run("postgres", "refresh_token", "refresh_token", 2000.0, 9.0),
            password,
            login,
            run("sqlite", "refresh_token", "refresh_token", 1000.0, 20.0),
            run("sqlite", "code_exchange", "code_exchange", 1100.0, 15.0),
        ];
        let lines = checks(&rows, None, None);
        // 100 password grants/s against 80 logins/s: 1.25x the cost.
        let login = line(&lines, "browser login on postgres");
        assert!(
            login.starts_with("NOT MET") && login.contains("1.25"),
            "{login}"
        );
        let exchange = line(&lines, "code exchange on sqlite");
        assert!(
            exchange.starts_with("MET ") && exchange.contains("1.10"),
            "{exchange}"
        );
        for unmeasured in ["browser login on sqlite", "code exchange on postgres"] {
            let l = line(&lines, unmeasured);
            assert!(l.ends_with("not measured"), "{l}");
        }
    }

    fn run(label: &str, grant: &str, result: &str, rate: f64, p99: f64) -> Value {
        serde_json::json!({
            "kind": "load",
            "label": label,
            "grant": grant,
            "concurrency": 16,
            "results": { result: { "throughput": rate, "p99_ms": p99 } },
        })
    }

    fn line<'a>(lines: &'a [String], name: &str) -> &'a str {
        lines
            .iter()
            .find(|l| l.contains(name))
            .map_or("", String::as_str)
    }

    #[test]
    fn the_store_and_client_credentials_targets() {
        let rows = vec![
            run("postgres", "refresh_token", "refresh_token", 3000.0, 12.0),
            run("sqlite", "refresh_token", "refresh_token", 1300.0, 180.0),
            run(
                "postgres",
                "client_credentials",
                "client_credentials",
                2100.0,
                9.0,
            ),
            run(
                "sqlite",
                "client_credentials",
                "client_credentials",
                900.0,
                50.0,
            ),
        ];
        let lines = checks(&rows, None, None);
        let cc = line(&lines, "client_credentials ≥ 2,000 grants/s");
        assert!(cc.starts_with("MET ") && cc.contains("2100.00"), "{cc}");
        let store = line(&lines, "SQLite refresh ≥ PostgreSQL refresh");
        assert!(store.starts_with("NOT MET"), "{store}");
        let p99 = line(&lines, "p99 under 20 ms at c=16 for refresh on both stores");
        assert!(
            p99.starts_with("NOT MET") && p99.contains("180.00"),
            "{p99}"
        );

        // Only one store measured: the p99 target is not decided.
        let lines = checks(&rows[..1], None, None);
        let p99 = line(&lines, "p99 under 20 ms at c=16 for refresh on both stores");
        assert!(
            p99.starts_with("-") && p99.ends_with("not measured"),
            "{p99}"
        );
        let cc = line(&lines, "client_credentials ≥ 2,000 grants/s");
        assert!(cc.ends_with("not measured"), "{cc}");
    }
}
