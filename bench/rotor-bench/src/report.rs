//! The `table` command: one table from the JSON lines of several runs, with the
//! refresh throughput as a ratio of the pgbench limit measured in the same run,
//! and the targets checked.

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
    for r in rows.iter().filter(|r| r["kind"] == "load") {
        let Some(results) = r["results"].as_object() else {
            continue;
        };
        for (grant, s) in results {
            let rate = f(&s["throughput"]);
            let ratio = match grant.as_str() {
                "refresh_token" => limit.map(|l| format!("{:.0} %", 100.0 * rate / l)),
                "password" => argon2.map(|a| format!("{:.0} % argon2", 100.0 * rate / a)),
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
    vec![
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
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

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
