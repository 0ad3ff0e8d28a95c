//! DPoP (RFC 9449) through HTTP on both stores: proof checks, DPoP-bound access
//! tokens for every grant, refresh tokens of public clients bound to their key,
//! replay across instances, nonces, the retry window, `dpop_jkt` on the
//! authorization code, and the resource side. Proofs are built here, with keys
//! made by the test.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use rotor::{
    store::{AuditFilter, AuditKind},
    wire::GrantType,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::browser::{Browser, Pkce, authorize_path};
use crate::helpers::{
    Answer, Db, PASSWORD, TestApp, TestClient, USERNAME, basic, client_record, spawn_app,
    spawn_app_with, spawn_instance,
};
use crate::on_both_stores;

on_both_stores!(
    a_proof_binds_the_access_token_of_every_grant,
    bad_proofs_are_refused_each_for_its_reason,
    the_htu_is_the_issuer_and_path_whatever_host_the_request_came_to,
    a_replayed_proof_is_refused_by_every_instance,
    a_public_clients_refresh_token_works_only_with_its_key,
    a_confidential_clients_refresh_token_stays_unbound,
    a_client_that_requires_dpop_must_send_a_proof,
    a_required_nonce_is_learned_with_one_retry_on_any_instance,
    a_retry_in_the_window_needs_a_new_proof_of_the_same_key,
    the_resource_takes_a_bound_token_only_with_its_proof,
    dpop_jkt_binds_the_authorization_code_to_a_key,
    the_resource_asks_for_a_nonce_when_nonces_are_required,
    proof_records_are_cleaned_up_after_their_window,
);

const TOKEN: &str = "/oauth2/token";
const ME: &str = "/api/v1/me";

/// A P-256 key of a client, with its public JWK.
struct Key {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl Key {
    fn new() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Key { pair, jwk }
    }

    /// The RFC 7638 thumbprint, computed here independently of the server.
    fn jkt(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().unwrap(),
            self.jwk["y"].as_str().unwrap()
        );
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// The claims of a fresh proof for `htm` at the issuer's `path`, now by the
    /// server's clock, with `extra` set over them (`null` removes a claim).
    fn claims(&self, app: &TestApp, htm: &str, path: &str, extra: Value) -> Value {
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": htm,
            "htu": format!("{}{path}", app.settings.tokens.issuer),
            "iat": app.clock.now().unix_timestamp(),
        });
        for (name, value) in extra.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn proof_with(&self, app: &TestApp, htm: &str, path: &str, extra: Value) -> String {
        self.sign(&self.header(), &self.claims(app, htm, path, extra))
    }

    /// A fresh proof for the token endpoint.
    fn proof(&self, app: &TestApp) -> String {
        self.proof_with(app, "POST", TOKEN, json!({}))
    }

    /// A fresh proof for the token endpoint carrying `nonce`.
    fn proof_nonce(&self, app: &TestApp, nonce: &str) -> String {
        self.proof_with(app, "POST", TOKEN, json!({ "nonce": nonce }))
    }

    /// A fresh proof for `GET /api/v1/me` with `token`.
    fn api_proof(&self, app: &TestApp, token: &str) -> String {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        self.proof_with(app, "GET", ME, json!({ "ath": ath }))
    }
}

/// POSTs a form to the token endpoint as `client` with these `DPoP` headers.
async fn post(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> Answer {
    let mut form = form.to_vec();
    let mut req = app.http.post(app.token_url());
    match &client.secret {
        Some(secret) => req = req.header("Authorization", basic(&client.id, secret)),
        None => form.push(("client_id", &client.id)),
    }
    for proof in proofs {
        req = req.header("DPoP", *proof);
    }
    TestApp::read(req.form(&form).send().await.unwrap()).await
}

async fn login(app: &TestApp, client: &TestClient, proofs: &[&str]) -> Answer {
    post(
        app,
        client,
        &[
            ("grant_type", "password"),
            ("username", USERNAME),
            ("password", PASSWORD),
        ],
        proofs,
    )
    .await
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str, proofs: &[&str]) -> Answer {
    post(
        app,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        proofs,
    )
    .await
}

/// GETs `/api/v1/me` with `Authorization: SCHEME token` and these proofs.
async fn get_me(app: &TestApp, scheme: &str, token: &str, proofs: &[&str]) -> Answer {
    let mut req = app
        .http
        .get(format!("{}{ME}", app.address))
        .header("Authorization", format!("{scheme} {token}"));
    for proof in proofs {
        req = req.header("DPoP", *proof);
    }
    TestApp::read(req.send().await.unwrap()).await
}

/// Registers a public client `spa` with the password and refresh grants.
async fn public_client(app: &TestApp, id: &str) -> TestClient {
    app.store
        .create_client(&client_record(id, None, "read write"))
        .await
        .unwrap();
    TestClient {
        id: id.into(),
        secret: None,
    }
}

/// The DPoP-Nonce headers of an answer.
fn nonces(answer: &Answer) -> Vec<String> {
    answer
        .headers
        .get_all("dpop-nonce")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

async fn audit_kinds(app: &TestApp) -> Vec<AuditKind> {
    app.store
        .audit_events(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn a_proof_binds_the_access_token_of_every_grant(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let secret = "svc-secret-svc-secret-svc-secret-0000";
    let mut svc = client_record("svc", Some(secret), "read");
    svc.grant_types = vec![GrantType::ClientCredentials];
    app.store.create_client(&svc).await.unwrap();
    let svc = TestClient {
        id: "svc".into(),
        secret: Some(secret.into()),
    };
    let key = Key::new();
    // Act
    let password = login(&app, &app.client, &[&key.proof(&app)]).await;
    let refreshed = refresh(
        &app,
        &app.client,
        &password.refresh_token(),
        &[&key.proof(&app)],
    )
    .await;
    let credentials = post(
        &app,
        &svc,
        &[("grant_type", "client_credentials")],
        &[&key.proof(&app)],
    )
    .await;
    let plain = login(&app, &app.client, &[]).await;
    // Assert
    for answer in [&password, &refreshed, &credentials] {
        answer.assert_ok();
        assert_eq!(answer.str("token_type"), "DPoP");
        let claims = app.verify_access_token(answer.str("access_token")).await;
        assert_eq!(claims.jkt(), Some(key.jkt().as_str()));
        // RFC 9449 §8.2: a fresh nonce rides on the answer, readable by scripts.
        assert_eq!(nonces(answer).len(), 1);
        assert!(nonces(answer)[0].len() >= 22);
        assert_eq!(
            answer.header("access-control-expose-headers"),
            Some("DPoP-Nonce")
        );
    }
    plain.assert_ok();
    assert_eq!(plain.str("token_type"), "Bearer");
    assert!(nonces(&plain).is_empty());
    let claims = app.verify_access_token(plain.str("access_token")).await;
    assert!(claims.cnf.is_none());
    // Introspection (RFC 9449 §6.2).
    let seen = app.introspect(password.str("access_token")).await;
    assert_eq!(seen.body["active"], true);
    assert_eq!(seen.str("token_type"), "DPoP");
    assert_eq!(seen.body["cnf"]["jkt"], key.jkt());
    let unbound = app.introspect(plain.str("access_token")).await;
    assert_eq!(unbound.str("token_type"), "Bearer");
    assert!(unbound.body.get("cnf").is_none());
    // Metadata (RFC 9449 §5.1).
    let metadata = app
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert_eq!(
        metadata.body["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
}

async fn bad_proofs_are_refused_each_for_its_reason(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let key = Key::new();
    let now = app.clock.now().unix_timestamp();
    let mut private = key.header();
    private["jwk"]["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let mut symmetric = key.header();
    symmetric["alg"] = json!("HS256");
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD
            .encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk}).to_string()),
        URL_SAFE_NO_PAD.encode(key.claims(&app, "POST", TOKEN, json!({})).to_string())
    );
    let mut wrong_typ = key.header();
    wrong_typ["typ"] = json!("JWT");
    let other = Key::new();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "wrong htm",
            vec![key.proof_with(&app, "GET", TOKEN, json!({}))],
        ),
        (
            "wrong htu",
            vec![key.proof_with(&app, "POST", "/oauth2/revoke", json!({}))],
        ),
        (
            "old iat",
            vec![key.proof_with(&app, "POST", TOKEN, json!({"iat": now - 120}))],
        ),
        (
            "future iat",
            vec![key.proof_with(&app, "POST", TOKEN, json!({"iat": now + 120}))],
        ),
        (
            "no jti",
            vec![key.proof_with(&app, "POST", TOKEN, json!({"jti": null}))],
        ),
        (
            "oversized jti",
            vec![key.proof_with(&app, "POST", TOKEN, json!({"jti": "j".repeat(300)}))],
        ),
        ("alg none", vec![none]),
        (
            "HS256",
            vec![key.sign(&symmetric, &key.claims(&app, "POST", TOKEN, json!({})))],
        ),
        (
            "private key",
            vec![key.sign(&private, &key.claims(&app, "POST", TOKEN, json!({})))],
        ),
        (
            "typ",
            vec![key.sign(&wrong_typ, &key.claims(&app, "POST", TOKEN, json!({})))],
        ),
        (
            "another key's signature",
            vec![other.sign(&key.header(), &key.claims(&app, "POST", TOKEN, json!({})))],
        ),
        ("two headers", vec![key.proof(&app), key.proof(&app)]),
        ("not a JWT", vec!["not-a-jwt".into()]),
    ];
    for (case, proofs) in cases {
        // Act
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let answer = login(&app, &app.client, &proofs).await;
        // Assert: no token, and no request input in the description.
        assert_eq!(
            (answer.status, answer.error()),
            (400, "invalid_dpop_proof"),
            "{case}: {}",
            answer.body
        );
        answer.assert_error(400, "invalid_dpop_proof");
    }
    // Nothing was issued, and the good proof still works.
    login(&app, &app.client, &[&key.proof(&app)])
        .await
        .assert_ok();
}

async fn the_htu_is_the_issuer_and_path_whatever_host_the_request_came_to(db: Db) {
    // Arrange: the public URL is behind a balancer, under a path prefix.
    let app = spawn_app_with(db, |s| {
        s.tokens.issuer = "https://auth.example.com/rotor".into();
    })
    .await;
    let key = Key::new();
    let by_host = format!("{}{TOKEN}", app.address);
    // Act
    let public = login(&app, &app.client, &[&key.proof(&app)]).await;
    let host = login(
        &app,
        &app.client,
        &[&key.proof_with(&app, "POST", TOKEN, json!({ "htu": by_host }))],
    )
    .await;
    let without_prefix = login(
        &app,
        &app.client,
        &[&key.proof_with(
            &app,
            "POST",
            TOKEN,
            json!({"htu": "https://auth.example.com/oauth2/token"}),
        )],
    )
    .await;
    let normalised = login(
        &app,
        &app.client,
        &[&key.proof_with(
            &app,
            "POST",
            TOKEN,
            json!({"htu": "https://AUTH.example.com:443/rotor/oauth2/token?q=1"}),
        )],
    )
    .await;
    // Assert
    public.assert_ok();
    normalised.assert_ok();
    host.assert_error(400, "invalid_dpop_proof");
    without_prefix.assert_error(400, "invalid_dpop_proof");
}

async fn a_replayed_proof_is_refused_by_every_instance(db: Db) {
    // Arrange: two instances behind one balancer, sharing the store.
    let app = spawn_app(db.clone()).await;
    let mut other = spawn_instance(db, app.settings.clone()).await;
    other.client = app.client.clone();
    let spa = public_client(&app, "spa").await;
    let key = Key::new();
    let proof = key.proof(&app);
    // Act
    let first = login(&app, &app.client, &[&proof]).await;
    let again = login(&app, &app.client, &[&proof]).await;
    let elsewhere = login(&other, &app.client, &[&proof]).await;
    // The refresh path: the replay check is part of the rotation.
    let tokens = login(&app, &spa, &[&key.proof(&app)]).await;
    let refresh_proof = key.proof(&app);
    let rotated = refresh(&app, &spa, &tokens.refresh_token(), &[&refresh_proof]).await;
    let replayed = refresh(&other, &spa, &rotated.refresh_token(), &[&refresh_proof]).await;
    let fresh = refresh(
        &other,
        &spa,
        &rotated.refresh_token(),
        &[&key.proof(&other)],
    )
    .await;
    // Assert
    first.assert_ok();
    again.assert_error(400, "invalid_dpop_proof");
    elsewhere.assert_error(400, "invalid_dpop_proof");
    rotated.assert_ok();
    replayed.assert_error(400, "invalid_dpop_proof");
    // The replay spent nothing: the token still refreshes with a new proof.
    fresh.assert_ok();
    assert!(audit_kinds(&app).await.contains(&AuditKind::DpopReplay));
}

async fn a_public_clients_refresh_token_works_only_with_its_key(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let spa = public_client(&app, "spa").await;
    let key = Key::new();
    let thief = Key::new();
    let tokens = login(&app, &spa, &[&key.proof(&app)]).await;
    tokens.assert_ok();
    let rt = tokens.refresh_token();
    // Act
    let other_key = refresh(&app, &spa, &rt, &[&thief.proof(&app)]).await;
    let no_proof = refresh(&app, &spa, &rt, &[]).await;
    let introspected = app.introspect(tokens.str("access_token")).await;
    let own_key = refresh(&app, &spa, &rt, &[&key.proof(&app)]).await;
    let next = own_key.refresh_token();
    let inherited = refresh(&app, &spa, &next, &[&thief.proof(&app)]).await;
    let again = refresh(&app, &spa, &next, &[&key.proof(&app)]).await;
    // Assert: refused without spending the token or revoking the login.
    other_key.assert_error(400, "invalid_grant");
    no_proof.assert_error(400, "invalid_grant");
    assert_eq!(introspected.body["active"], true);
    own_key.assert_ok();
    assert_eq!(own_key.str("token_type"), "DPoP");
    // The rotated token inherits the binding.
    inherited.assert_error(400, "invalid_grant");
    again.assert_ok();
    // The refused attempts are audited; nothing counted as reuse.
    let kinds = audit_kinds(&app).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == AuditKind::DpopWrongKey)
            .count(),
        3
    );
    assert!(!kinds.contains(&AuditKind::ReuseDetected));
    // The refresh token is introspected with its binding.
    let seen = app.introspect(&again.refresh_token()).await;
    assert_eq!(seen.body["cnf"]["jkt"], key.jkt());
}

async fn a_confidential_clients_refresh_token_stays_unbound(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let key = Key::new();
    let other = Key::new();
    let tokens = login(&app, &app.client, &[&key.proof(&app)]).await;
    tokens.assert_ok();
    assert_eq!(tokens.str("token_type"), "DPoP");
    // Act
    let bearer = refresh(&app, &app.client, &tokens.refresh_token(), &[]).await;
    let rebound = refresh(
        &app,
        &app.client,
        &bearer.refresh_token(),
        &[&other.proof(&app)],
    )
    .await;
    // Assert: bound by its client authentication, not by a key.
    bearer.assert_ok();
    assert_eq!(bearer.str("token_type"), "Bearer");
    rebound.assert_ok();
    assert_eq!(rebound.str("token_type"), "DPoP");
    let claims = app.verify_access_token(rebound.str("access_token")).await;
    assert_eq!(claims.jkt(), Some(other.jkt().as_str()));
    assert!(
        app.introspect(&rebound.refresh_token())
            .await
            .body
            .get("cnf")
            .is_none()
    );
}

async fn a_client_that_requires_dpop_must_send_a_proof(db: Db) {
    // Arrange: RFC 9449 §5.2 dpop_bound_access_tokens.
    let app = spawn_app(db).await;
    let mut record = client_record("strict", None, "read");
    record.dpop.bound_access_tokens = true;
    app.store.create_client(&record).await.unwrap();
    let strict = TestClient {
        id: "strict".into(),
        secret: None,
    };
    let key = Key::new();
    // Act
    let without = login(&app, &strict, &[]).await;
    let with = login(&app, &strict, &[&key.proof(&app)]).await;
    // Assert
    without.assert_error(400, "invalid_request");
    with.assert_ok();
    assert_eq!(with.str("token_type"), "DPoP");
}

async fn a_required_nonce_is_learned_with_one_retry_on_any_instance(db: Db) {
    // Arrange
    let app = spawn_app_with(db.clone(), |s| s.dpop.require_nonce = true).await;
    let mut other = spawn_instance(db, app.settings.clone()).await;
    other.client = app.client.clone();
    let mut relaxed = client_record("relaxed", None, "read");
    relaxed.dpop.require_nonce = Some(false);
    app.store.create_client(&relaxed).await.unwrap();
    let relaxed = TestClient {
        id: "relaxed".into(),
        secret: None,
    };
    let key = Key::new();
    // Act
    let asked = login(&app, &app.client, &[&key.proof(&app)]).await;
    let nonce = nonces(&asked).pop().unwrap();
    let retried = login(&other, &app.client, &[&key.proof_nonce(&other, &nonce)]).await;
    let guessed = login(
        &app,
        &app.client,
        &[&key.proof_nonce(&app, "AAAAAAAAAAAAAAAAAAAAAAAA")],
    )
    .await;
    let without_override = login(&app, &relaxed, &[&key.proof(&app)]).await;
    app.advance(Duration::from_secs(121));
    other.advance(Duration::from_secs(121));
    let stale = login(&app, &app.client, &[&key.proof_nonce(&app, &nonce)]).await;
    // Assert: 400 use_dpop_nonce with exactly one nonce, readable by scripts.
    asked.assert_error(400, "use_dpop_nonce");
    assert_eq!(nonces(&asked).len(), 1);
    assert!(nonce.len() >= 22);
    assert_eq!(
        asked.header("access-control-expose-headers"),
        Some("DPoP-Nonce")
    );
    // A nonce made by one instance is good at the other.
    retried.assert_ok();
    assert_eq!(nonces(&retried).len(), 1);
    guessed.assert_error(400, "use_dpop_nonce");
    without_override.assert_ok();
    stale.assert_error(400, "use_dpop_nonce");
    assert_ne!(nonces(&stale), [nonce]);
}

async fn a_retry_in_the_window_needs_a_new_proof_of_the_same_key(db: Db) {
    // Arrange
    let app = spawn_app_with(db, |s| s.refresh.grace_period = Duration::from_secs(30)).await;
    let spa = public_client(&app, "spa").await;
    let key = Key::new();
    let thief = Key::new();
    let tokens = login(&app, &spa, &[&key.proof(&app)]).await;
    let rt = tokens.refresh_token();
    let first_proof = key.proof(&app);
    let first = refresh(&app, &spa, &rt, &[&first_proof]).await;
    // Act
    let replayed = refresh(&app, &spa, &rt, &[&first_proof]).await;
    let other_key = refresh(&app, &spa, &rt, &[&thief.proof(&app)]).await;
    let retried = refresh(&app, &spa, &rt, &[&key.proof(&app)]).await;
    // Assert: the same answer for a new proof of the same key only.
    first.assert_ok();
    replayed.assert_error(400, "invalid_dpop_proof");
    other_key.assert_error(400, "invalid_grant");
    retried.assert_ok();
    assert_eq!(retried.str("access_token"), first.str("access_token"));
    assert_eq!(retried.refresh_token(), first.refresh_token());
    assert_eq!(retried.str("token_type"), "DPoP");
    // Nothing was revoked.
    assert!(!audit_kinds(&app).await.contains(&AuditKind::ReuseDetected));
    refresh(&app, &spa, &first.refresh_token(), &[&key.proof(&app)])
        .await
        .assert_ok();
}

async fn the_resource_takes_a_bound_token_only_with_its_proof(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let key = Key::new();
    let other = Key::new();
    let bound = login(&app, &app.client, &[&key.proof(&app)]).await;
    let token = bound.str("access_token").to_owned();
    let plain = login(&app, &app.client, &[]).await;
    let bearer = plain.str("access_token").to_owned();
    let proof = key.api_proof(&app, &token);
    // Act
    let ok = get_me(&app, "DPoP", &token, &[&proof]).await;
    let replayed = get_me(&app, "DPoP", &token, &[&proof]).await;
    let as_bearer = get_me(&app, "Bearer", &token, &[]).await;
    let as_bearer_with_proof =
        get_me(&app, "Bearer", &token, &[&key.api_proof(&app, &token)]).await;
    let no_proof = get_me(&app, "DPoP", &token, &[]).await;
    let no_ath = get_me(
        &app,
        "DPoP",
        &token,
        &[&key.proof_with(&app, "GET", ME, json!({}))],
    )
    .await;
    let other_token = get_me(&app, "DPoP", &token, &[&key.api_proof(&app, &bearer)]).await;
    let other_key = get_me(&app, "DPoP", &token, &[&other.api_proof(&app, &token)]).await;
    let unbound_as_dpop = get_me(&app, "DPoP", &bearer, &[&key.api_proof(&app, &bearer)]).await;
    let unbound = get_me(&app, "Bearer", &bearer, &[]).await;
    // Assert
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.str("client_id"), "app");
    for (case, answer, error) in [
        ("replayed", &replayed, "invalid_dpop_proof"),
        ("as bearer", &as_bearer, "invalid_token"),
        (
            "as bearer with a proof",
            &as_bearer_with_proof,
            "invalid_token",
        ),
        ("no proof", &no_proof, "invalid_dpop_proof"),
        ("no ath", &no_ath, "invalid_dpop_proof"),
        ("another token's ath", &other_token, "invalid_dpop_proof"),
        ("another key", &other_key, "invalid_dpop_proof"),
        ("unbound as DPoP", &unbound_as_dpop, "invalid_token"),
    ] {
        assert_eq!(answer.status, 401, "{case}: {}", answer.body);
        assert_eq!(answer.error(), error, "{case}");
        let challenge = answer.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with(&format!(r#"DPoP error="{error}""#)),
            "{case}: {challenge}"
        );
        assert!(
            challenge.contains(r#"algs="ES256 EdDSA RS256 PS256""#),
            "{challenge}"
        );
    }
    assert_eq!(unbound.status, 200, "{}", unbound.body);
}

async fn dpop_jkt_binds_the_authorization_code_to_a_key(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut record = client_record("spa", None, "read write");
    record.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    record.code_flow.redirect_uris = vec!["http://127.0.0.1/callback".into()];
    app.store.create_client(&record).await.unwrap();
    let spa = TestClient {
        id: "spa".into(),
        secret: None,
    };
    let key = Key::new();
    let thief = Key::new();
    let pkce = Pkce::new();
    let jkt = key.jkt();
    let path = authorize_path(&[
        ("response_type", "code"),
        ("client_id", "spa"),
        ("redirect_uri", "http://127.0.0.1:5555/callback"),
        ("state", "st"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
        ("dpop_jkt", &jkt),
    ]);
    let mut browser = Browser::new(&app);
    let page = browser.get(&path).await;
    let done = browser.sign_in(&page, USERNAME, PASSWORD).await;
    let code = done.location_param("code").expect("a code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:5555/callback"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let malformed = browser
        .get(&authorize_path(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", "http://127.0.0.1:5555/callback"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("dpop_jkt", "not-a-thumbprint"),
        ]))
        .await;
    // Act
    let no_proof = post(&app, &spa, &form, &[]).await;
    let other_key = post(&app, &spa, &form, &[&thief.proof(&app)]).await;
    let own_key = post(&app, &spa, &form, &[&key.proof(&app)]).await;
    // Assert: refused without spending the code; then exchanged, and the login
    // bound to the key.
    no_proof.assert_error(400, "invalid_grant");
    other_key.assert_error(400, "invalid_grant");
    own_key.assert_ok();
    assert_eq!(own_key.str("token_type"), "DPoP");
    refresh(&app, &spa, &own_key.refresh_token(), &[])
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        malformed.location_param("error").as_deref(),
        Some("invalid_request")
    );
}

async fn the_resource_asks_for_a_nonce_when_nonces_are_required(db: Db) {
    // Arrange
    let app = spawn_app_with(db, |s| s.dpop.require_nonce = true).await;
    let key = Key::new();
    let asked = login(&app, &app.client, &[&key.proof(&app)]).await;
    let nonce = nonces(&asked).pop().unwrap();
    let tokens = login(&app, &app.client, &[&key.proof_nonce(&app, &nonce)]).await;
    tokens.assert_ok();
    let token = tokens.str("access_token").to_owned();
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
    // Act
    let without = get_me(&app, "DPoP", &token, &[&key.api_proof(&app, &token)]).await;
    let api_nonce = nonces(&without).pop().unwrap();
    let with = get_me(
        &app,
        "DPoP",
        &token,
        &[&key.proof_with(&app, "GET", ME, json!({"ath": ath, "nonce": api_nonce}))],
    )
    .await;
    // Assert: 401 with a DPoP challenge and one nonce, then 200.
    assert_eq!(without.status, 401, "{}", without.body);
    assert!(
        without
            .header("www-authenticate")
            .unwrap()
            .starts_with(r#"DPoP error="use_dpop_nonce""#)
    );
    assert_eq!(nonces(&without).len(), 1);
    assert_eq!(
        without.header("access-control-expose-headers"),
        Some("DPoP-Nonce")
    );
    assert_eq!(with.status, 200, "{}", with.body);
}

async fn proof_records_are_cleaned_up_after_their_window(db: Db) {
    // Arrange
    let app = spawn_app_with(db.clone(), |s| {
        s.cleanup.enabled = true;
        s.cleanup.interval = Duration::from_secs(1);
    })
    .await;
    let key = Key::new();
    login(&app, &app.client, &[&key.proof(&app)])
        .await
        .assert_ok();
    assert_eq!(db.count("select count(*) from dpop_proofs").await, 1);
    app.advance(Duration::from_secs(66));
    // Act: wait for the clean-up (bounded).
    let mut left = 1;
    for _ in 0..100 {
        left = db.count("select count(*) from dpop_proofs").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Assert
    assert_eq!(left, 0, "proof records left after their window");
}
