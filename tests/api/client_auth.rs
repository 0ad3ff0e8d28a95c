use crate::helpers::{Db, TestClient, basic, client_record, spawn_app, spawn_app_with};
use crate::on_both_stores;

on_both_stores!(
    basic_credentials_are_form_url_decoded,
    client_secret_post_authenticates,
    basic_and_client_secret_together_are_invalid_request,
    wrong_secret_is_invalid_client_with_www_authenticate,
    unknown_client_gets_the_same_answer_as_a_wrong_secret,
    malformed_basic_header_is_invalid_client,
    public_client_authenticates_by_client_id,
    confidential_client_without_secret_is_invalid_client,
    request_naming_no_client_is_invalid_client,
    anonymous_client_serves_requests_that_name_no_client,
    anonymous_client_that_is_confidential_is_refused,
    wrong_secret_in_the_body_is_400_without_a_challenge,
    unknown_public_client_is_400_without_a_challenge,
    invalid_client_is_401_with_a_challenge_only_after_basic_on_every_endpoint,
    public_client_introspecting_through_basic_gets_401_with_a_challenge,
);

/// RFC 6749 §5.2: 401 and `WWW-Authenticate: Basic` when the client tried the
/// Authorization header.
#[track_caller]
fn assert_basic_challenge(answer: &crate::helpers::Answer) {
    answer.assert_error(401, "invalid_client");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Basic "), "{challenge:?}");
}

/// 400 and no challenge when it did not, so that no browser opens a credential
/// dialog (RFC 9110 §15.5.2 allows no 401 without one).
#[track_caller]
fn assert_no_challenge(answer: &crate::helpers::Answer) {
    answer.assert_error(400, "invalid_client");
    assert_eq!(answer.header("www-authenticate"), None);
}

fn login_form(app: &crate::helpers::TestApp) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "password".into()),
        ("username", "alice".into()),
        ("password", app.user.password.clone()),
    ]
}

async fn basic_credentials_are_form_url_decoded(db: Db) {
    let app = spawn_app(db).await;
    let id = "svc client:1";
    let secret = "s3cr3t+with/special=chars&%:and more than 32";
    app.store
        .create_client(&client_record(id, Some(secret), "read"))
        .await
        .unwrap();
    let answer = app
        .post_raw(
            Some("application/x-www-form-urlencoded"),
            Some(basic(id, secret)),
            format!(
                "grant_type=password&username=alice&password={}",
                urlencode(&app.user.password)
            ),
        )
        .await;
    answer.assert_ok();
    let claims = app.verify_access_token(answer.str("access_token")).await;
    assert_eq!(claims.client_id, id);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn client_secret_post_authenticates(db: Db) {
    let app = spawn_app(db).await;
    let mut form = login_form(&app);
    form.push(("client_id", "app".into()));
    form.push(("client_secret", app.client.secret.clone().unwrap()));
    let answer = TestAppExt::post(&app, &form, None).await;
    answer.assert_ok();
}

async fn basic_and_client_secret_together_are_invalid_request(db: Db) {
    let app = spawn_app(db).await;
    let mut form = login_form(&app);
    form.push(("client_secret", app.client.secret.clone().unwrap()));
    let answer = TestAppExt::post(&app, &form, Some(app.client_basic())).await;
    answer.assert_error(400, "invalid_request");
}

async fn wrong_secret_is_invalid_client_with_www_authenticate(db: Db) {
    let app = spawn_app(db).await;
    let answer = TestAppExt::post(&app, &login_form(&app), Some(basic("app", "wrong"))).await;
    assert_basic_challenge(&answer);
}

async fn unknown_client_gets_the_same_answer_as_a_wrong_secret(db: Db) {
    let app = spawn_app(db).await;
    let wrong = TestAppExt::post(&app, &login_form(&app), Some(basic("app", "wrong"))).await;
    let unknown = TestAppExt::post(&app, &login_form(&app), Some(basic("nobody", "wrong"))).await;
    assert_basic_challenge(&unknown);
    assert_eq!(wrong.body, unknown.body);
}

async fn malformed_basic_header_is_invalid_client(db: Db) {
    let app = spawn_app(db).await;
    let answer =
        TestAppExt::post(&app, &login_form(&app), Some("Basic !!!not-base64".into())).await;
    assert_basic_challenge(&answer);
}

async fn public_client_authenticates_by_client_id(db: Db) {
    let app = spawn_app(db).await;
    app.store
        .create_client(&client_record("spa", None, "read"))
        .await
        .unwrap();
    let client = TestClient {
        id: "spa".into(),
        secret: None,
    };
    let answer = app.login_as(&client).await;
    answer.assert_ok();
    // A public client sending a secret is refused.
    let mut form = login_form(&app);
    form.push(("client_id", "spa".into()));
    form.push(("client_secret", "anything-at-all".into()));
    assert_no_challenge(&TestAppExt::post(&app, &form, None).await);
}

async fn confidential_client_without_secret_is_invalid_client(db: Db) {
    let app = spawn_app(db).await;
    let mut form = login_form(&app);
    form.push(("client_id", "app".into()));
    assert_no_challenge(&TestAppExt::post(&app, &form, None).await);
}

async fn request_naming_no_client_is_invalid_client(db: Db) {
    let app = spawn_app(db).await;
    assert_no_challenge(&TestAppExt::post(&app, &login_form(&app), None).await);
}

async fn anonymous_client_serves_requests_that_name_no_client(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.clients.anonymous_client = Some("powershell".into())
    })
    .await;
    app.store
        .create_client(&client_record("powershell", None, "api"))
        .await
        .unwrap();
    let login = TestAppExt::post(&app, &login_form(&app), None).await;
    login.assert_ok();
    assert_eq!(
        app.verify_access_token(login.str("access_token"))
            .await
            .client_id,
        "powershell"
    );
    let refreshed = TestAppExt::post(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &login.refresh_token()),
        ],
        None,
    )
    .await;
    refreshed.assert_ok();
}

async fn anonymous_client_that_is_confidential_is_refused(db: Db) {
    let app = spawn_app_with(db, |s| s.clients.anonymous_client = Some("app".into())).await;
    assert_no_challenge(&TestAppExt::post(&app, &login_form(&app), None).await);
}

async fn wrong_secret_in_the_body_is_400_without_a_challenge(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut form = login_form(&app);
    form.push(("client_id", "app".into()));
    form.push((
        "client_secret",
        "wrong-wrong-wrong-wrong-wrong-wrong".into(),
    ));
    // Act
    let answer = TestAppExt::post(&app, &form, None).await;
    // Assert
    assert_no_challenge(&answer);
}

async fn unknown_public_client_is_400_without_a_challenge(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let mut form = login_form(&app);
    form.push(("client_id", "nobody".into()));
    // Act
    let answer = TestAppExt::post(&app, &form, None).await;
    // Assert
    assert_no_challenge(&answer);
}

async fn invalid_client_is_401_with_a_challenge_only_after_basic_on_every_endpoint(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let wrong_secret = "wrong-wrong-wrong-wrong-wrong-wrong";
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        let form: Vec<(&str, &str)> = if path == "/oauth2/token" {
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "rotor_rt_unknown"),
            ]
        } else {
            vec![("token", "rotor_rt_unknown")]
        };
        let post = |auth: Option<String>, extra: &[(&'static str, &'static str)]| {
            let mut form = form.clone();
            form.extend_from_slice(extra);
            let mut req = app.http.post(format!("{}{path}", app.address)).form(&form);
            if let Some(auth) = auth {
                req = req.header("Authorization", auth);
            }
            async move { crate::helpers::TestApp::read(req.send().await.unwrap()).await }
        };
        // Act
        let through_basic = post(Some(basic("app", wrong_secret)), &[]).await;
        let through_post = post(
            None,
            &[("client_id", "app"), ("client_secret", wrong_secret)],
        )
        .await;
        let unknown_public = post(None, &[("client_id", "nobody")]).await;
        let no_client = post(None, &[]).await;
        // Assert
        assert_basic_challenge(&through_basic);
        assert_no_challenge(&through_post);
        assert_no_challenge(&unknown_public);
        assert_no_challenge(&no_client);
    }
}

async fn public_client_introspecting_through_basic_gets_401_with_a_challenge(db: Db) {
    // Arrange: some libraries send a public client with an empty Basic password.
    let app = spawn_app(db).await;
    app.store
        .create_client(&client_record("spa", None, "read"))
        .await
        .unwrap();
    let login = app.login().await;
    let url = format!("{}/oauth2/introspect", app.address);
    let form = [("token", login.str("access_token"))];
    // Act
    let through_basic = crate::helpers::TestApp::read(
        app.http
            .post(&url)
            .header("Authorization", basic("spa", ""))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let through_body = crate::helpers::TestApp::read(
        app.http
            .post(&url)
            .form(&[("token", login.str("access_token")), ("client_id", "spa")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Assert
    assert_basic_challenge(&through_basic);
    assert_no_challenge(&through_body);
}

/// Posting an arbitrary form with an optional Authorization header.
trait TestAppExt {
    async fn post<K: AsRef<str>, V: AsRef<str>>(
        &self,
        form: &[(K, V)],
        auth: Option<String>,
    ) -> crate::helpers::Answer;
}

impl TestAppExt for crate::helpers::TestApp {
    async fn post<K: AsRef<str>, V: AsRef<str>>(
        &self,
        form: &[(K, V)],
        auth: Option<String>,
    ) -> crate::helpers::Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .finish();
        self.post_raw(Some("application/x-www-form-urlencoded"), auth, body)
            .await
    }
}
