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
);

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
    answer.assert_error(401, "invalid_client");
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
}

async fn unknown_client_gets_the_same_answer_as_a_wrong_secret(db: Db) {
    let app = spawn_app(db).await;
    let wrong = TestAppExt::post(&app, &login_form(&app), Some(basic("app", "wrong"))).await;
    let unknown = TestAppExt::post(&app, &login_form(&app), Some(basic("nobody", "wrong"))).await;
    unknown.assert_error(401, "invalid_client");
    assert_eq!(wrong.body, unknown.body);
}

async fn malformed_basic_header_is_invalid_client(db: Db) {
    let app = spawn_app(db).await;
    let answer =
        TestAppExt::post(&app, &login_form(&app), Some("Basic !!!not-base64".into())).await;
    answer.assert_error(401, "invalid_client");
    assert!(answer.header("www-authenticate").is_some());
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
    TestAppExt::post(&app, &form, None)
        .await
        .assert_error(401, "invalid_client");
}

async fn confidential_client_without_secret_is_invalid_client(db: Db) {
    let app = spawn_app(db).await;
    let mut form = login_form(&app);
    form.push(("client_id", "app".into()));
    TestAppExt::post(&app, &form, None)
        .await
        .assert_error(401, "invalid_client");
}

async fn request_naming_no_client_is_invalid_client(db: Db) {
    let app = spawn_app(db).await;
    TestAppExt::post(&app, &login_form(&app), None)
        .await
        .assert_error(401, "invalid_client");
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
    TestAppExt::post(&app, &login_form(&app), None)
        .await
        .assert_error(401, "invalid_client");
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
