//! Replays every input under `fuzz/regressions/` through the fuzz harness, so that
//! a defect the fuzzer once found stays fixed in a normal `cargo test`; then sends
//! the same inputs, and seeded random hostile requests, to a real server on each
//! store, where a value the parsers let through would meet the database.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

use crate::helpers::{Db, TestApp, basic, spawn_app};
use crate::on_both_stores;

#[path = "../../fuzz/harness.rs"]
mod harness;

on_both_stores!(
    regression_inputs_never_get_a_server_error_from_a_real_server,
    random_hostile_requests_never_get_a_server_error_from_a_real_server,
);

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            (path, input)
        })
        .collect();
    assert!(
        !inputs.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    inputs
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, input) in inputs(target) {
        let outcome = std::panic::catch_unwind(|| run(&input));
        assert!(outcome.is_ok(), "{} fails again", path.display());
    }
}

/// Sends a request input (the harness layout) to the token, revocation and
/// introspection endpoints: no answer is a 5xx, and every refusal is an RFC 6749
/// error whose description keeps to its character set.
async fn send_everywhere(app: &TestApp, input: &[u8]) {
    let Some((content_type, header, body)) = harness::split_request(input) else {
        return;
    };
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        let mut req = app
            .http
            .post(format!("{}{path}", app.address))
            .body(body.to_vec());
        if let Some(content_type) = content_type {
            req = req.header("Content-Type", content_type);
        }
        let value = reqwest::header::HeaderValue::from_bytes(header);
        if let (Ok(value), false) = (value, header.is_empty()) {
            req = req.header("Authorization", value);
        }
        let answer = TestApp::read(req.send().await.unwrap()).await;
        assert!(
            answer.status < 500,
            "{path} answered {} to {input:?}: {}",
            answer.status,
            answer.body
        );
        if answer.status >= 400 {
            let description = answer.str("error_description");
            assert!(
                description
                    .chars()
                    .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')),
                "{path}: {description:?}"
            );
        }
    }
}

async fn regression_inputs_never_get_a_server_error_from_a_real_server(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    for (_, input) in inputs("request") {
        // Act and assert
        send_everywhere(&app, &input).await;
    }
}

/// Pieces of hostile values: control characters raw and percent-encoded, quotes,
/// non-ASCII, broken escapes, JSON and form syntax.
const PIECES: &[&str] = &[
    "\0",
    "%00",
    "\u{1}",
    "%1F",
    "\u{7f}",
    "%7F",
    "\n",
    "%0D%0A",
    "\t",
    "\"",
    "\\",
    "é",
    "%C3%A9",
    "%FF",
    "\u{FFFF}",
    "+",
    "%",
    "&",
    "=",
    " ",
    "{",
    "}",
    ":",
    "a",
    "rotor_rt_",
    "app",
    "alice",
];

const NAMES: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "username",
    "password",
    "scope",
    "refresh_token",
    "token",
    "token_type_hint",
    "x\0y",
];

fn hostile_value(rng: &mut StdRng) -> String {
    let len = rng.gen_range(1..12);
    let mut value: String = (0..len).map(|_| *PIECES.choose(rng).unwrap()).collect();
    // Now and then a long value that does not compress, for the store's indexes.
    if rng.gen_ratio(1, 10) {
        let noise: String = (0..rng.gen_range(300..4000))
            .map(|_| char::from(rng.gen_range(b'!'..=b'~')))
            .collect();
        value.push_str(&noise);
    }
    value
}

/// One request in the harness layout: a content type, maybe a Basic header (real
/// credentials, or hostile ones), and a form or JSON body of hostile parameters.
fn hostile_request(rng: &mut StdRng, app: &TestApp) -> Vec<u8> {
    let mut params: Vec<(String, String)> = Vec::new();
    for _ in 0..rng.gen_range(1..6) {
        params.push((NAMES.choose(rng).unwrap().to_string(), hostile_value(rng)));
    }
    if rng.gen_bool(0.5) {
        params.push((
            "grant_type".into(),
            ["password", "refresh_token"]
                .choose(rng)
                .unwrap()
                .to_string(),
        ));
    }
    let (selector, body) = if rng.gen_bool(0.5) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &params {
            form.append_pair(name, value);
        }
        (0u8, form.finish())
    } else {
        let members: Vec<String> = params
            .iter()
            .map(|(n, v)| {
                format!(
                    "{}:{}",
                    serde_json::Value::from(n.as_str()),
                    serde_json::Value::from(v.as_str())
                )
            })
            .collect();
        (1u8, format!("{{{}}}", members.join(",")))
    };
    let header = match rng.gen_range(0..3) {
        0 => String::new(),
        1 => app.client_basic(),
        _ => basic(&hostile_value(rng), &hostile_value(rng)),
    };
    let header = if header.len() > 255 {
        String::new()
    } else {
        header
    };
    let mut input = vec![selector, u8::try_from(header.len()).unwrap()];
    input.extend(header.as_bytes());
    input.extend(body.as_bytes());
    input
}

async fn random_hostile_requests_never_get_a_server_error_from_a_real_server(db: Db) {
    // Arrange: a fixed seed, so that a failure reproduces.
    let app = spawn_app(db).await;
    let mut rng = StdRng::seed_from_u64(0x2074_6f72);
    for _ in 0..150 {
        let input = hostile_request(&mut rng, &app);
        // Act and assert
        send_everywhere(&app, &input).await;
    }
}

#[test]
fn request_parser_regressions_stay_fixed() {
    replay("request", harness::request);
}

#[test]
fn basic_header_regressions_stay_fixed() {
    replay("basic_header", harness::basic_header);
}

// Between on-demand cargo-fuzz runs, every `cargo test` also throws a bounded number
// of random inputs at the same harness (no coverage guidance, but the same checks:
// no panic, every refusal a 4xx RFC 6749 error, no secret in a Debug output).
proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 2000, ..Default::default() })]

    #[test]
    fn random_requests_never_break_the_parsers(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        harness::request(&input);
    }

    #[test]
    fn random_form_and_json_shaped_bodies_never_break_the_parsers(
        selector in 0u8..6,
        body in proptest::collection::vec(
            proptest::sample::select(b"grant_typepaswordusernmefhk_=&%+{}\":,[]0123456789ABCDEF \\".to_vec()),
            0..300,
        ),
    ) {
        // Layout: content type selector, an empty header, then the body.
        let mut input = vec![selector, 0];
        input.extend(body);
        harness::request(&input);
    }

    #[test]
    fn random_basic_headers_never_break_the_decoder(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        harness::basic_header(&input);
    }
}
