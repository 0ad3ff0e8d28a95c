//! The admin API's and the console's lists of users and clients: paged by key
//! (`after`, a `Link: <…>; rel="next"` header, a "Next" link), searched in the
//! store with `%` and `_` taken literally. A user's logins and browser sessions,
//! newest first, paged by position (`before`).

use std::time::Duration;

use rotor::crypto::token::SessionToken;
use rotor::store::{ClientRecord, NewAccessToken, NewBrowserSession, NewFamily, UserRecord};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::admin_api::{admin_token, call, ops_client};
use crate::console::admin_browser;
use crate::helpers::{Answer, Db, TestApp, client_record, spawn_app};
use crate::on_both_stores;

on_both_stores!(
    users_are_searched_in_the_store_and_paged_by_name,
    clients_are_paged_by_id_until_the_last_page,
    bad_list_parameters_are_json_errors,
    the_console_lists_users_and_clients_a_page_at_a_time,
    a_users_logins_and_sessions_are_paged_newest_first_by_link,
    the_console_pages_a_users_logins_and_sessions_apart,
);

/// Adds users directly in the store; none of them signs in, so no real hash.
async fn add_users(app: &TestApp, names: &[String]) {
    for name in names {
        app.store
            .create_user(&UserRecord {
                id: Uuid::new_v4(),
                username: name.clone(),
                password_hash: "not a hash".into(),
                disabled: false,
                admin: false,
                created_at: OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
    }
}

/// The `after`-relative path of an answer's `Link: <…>; rel="next"`, if any.
fn next_of(answer: &Answer) -> Option<String> {
    let link = answer.header("link")?;
    let next = link
        .strip_prefix("</admin/api/v1/")
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("{link}"));
    Some(next.to_owned())
}

fn names(answer: &Answer, field: &str) -> Vec<String> {
    answer
        .body
        .as_array()
        .unwrap_or_else(|| panic!("{}", answer.body))
        .iter()
        .map(|u| u[field].as_str().unwrap().to_owned())
        .collect()
}

async fn users_are_searched_in_the_store_and_paged_by_name(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let listed: Vec<String> = ["list-a%1", "list-b_2", "list-c3", "list-d4", "lisp"]
        .map(String::from)
        .into();
    add_users(&app, &listed).await;

    // Act: pages of two of the names containing "LIST", in any case.
    let first = call(&app, "GET", "users?q=LIST&limit=2", Some(&admin), None).await;
    let next = next_of(&first).unwrap();
    let second = call(&app, "GET", &next, Some(&admin), None).await;
    let percent = call(&app, "GET", "users?q=%25", Some(&admin), None).await;
    let underscore = call(&app, "GET", "users?q=_", Some(&admin), None).await;
    let every = call(&app, "GET", "users", Some(&admin), None).await;

    // Assert
    assert_eq!(names(&first, "username"), ["list-a%1", "list-b_2"]);
    assert_eq!(next, "users?q=LIST&limit=2&after=list-b_2");
    assert_eq!(names(&second, "username"), ["list-c3", "list-d4"]);
    assert!(
        next_of(&second).is_none(),
        "an exact last page names no next"
    );
    assert_eq!(names(&percent, "username"), ["list-a%1"]);
    assert_eq!(names(&underscore, "username"), ["list-b_2"]);
    let every = names(&every, "username");
    let mut sorted = every.clone();
    sorted.sort();
    assert_eq!(every, sorted);
    for name in listed.iter().chain([&"root".to_owned()]) {
        assert!(every.contains(name), "{every:?}");
    }
}

async fn clients_are_paged_by_id_until_the_last_page(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    for id in ["page-1", "page-2", "page-3"] {
        let client: ClientRecord = client_record(id, Some("a secret"), "read");
        app.store.create_client(&client).await.unwrap();
    }

    // Act: follow the links, one client a page.
    let mut seen = Vec::new();
    let mut path = Some("clients?limit=1".to_owned());
    while let Some(p) = path {
        let page = call(&app, "GET", &p, Some(&admin), None).await;
        page.assert_ok();
        let ids = names(&page, "client_id");
        assert!(ids.len() <= 1, "{ids:?}");
        seen.extend(ids);
        path = next_of(&page);
        assert!(seen.len() < 100, "the pages never end: {seen:?}");
    }
    let searched = call(&app, "GET", "clients?q=PAGE-", Some(&admin), None).await;

    // Assert: every client once, in id order.
    let mut stored: Vec<String> = app
        .store
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    stored.sort();
    assert_eq!(seen, stored);
    assert_eq!(
        names(&searched, "client_id"),
        ["page-1", "page-2", "page-3"]
    );
    assert!(searched.header("link").is_none());
}

async fn bad_list_parameters_are_json_errors(db: Db) {
    // Arrange
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let long = "x".repeat(256);

    // Act / Assert
    for list in ["users", "clients"] {
        for bad in [
            "limit=x".to_owned(),
            "limit=-1".to_owned(),
            "after=a%07".to_owned(),
            "q=%00".to_owned(),
            format!("q={long}"),
            "page=2".to_owned(),
        ] {
            call(&app, "GET", &format!("{list}?{bad}"), Some(&admin), None)
                .await
                .assert_error(400, "invalid_request");
        }
        let zero = call(&app, "GET", &format!("{list}?limit=0"), Some(&admin), None).await;
        zero.assert_ok();
        assert_eq!(zero.body.as_array().unwrap().len(), 1, "{}", zero.body);
        call(&app, "GET", list, None, None)
            .await
            .assert_error(401, "invalid_token");
    }
}

/// The href of a page's first `rel="next"` link, unescaped.
fn next_href(html: &str) -> Option<String> {
    next_hrefs(html).into_iter().next()
}

async fn the_console_lists_users_and_clients_a_page_at_a_time(db: Db) {
    // Arrange: more users than a page holds (100), and a client beyond the first page.
    let app = spawn_app(db).await;
    let listed: Vec<String> = (0..120).map(|i| format!("member-{i:03}")).collect();
    add_users(&app, &listed).await;
    for i in 0..101 {
        let client = client_record(&format!("zz-{i:03}"), None, "read");
        app.store.create_client(&client).await.unwrap();
    }
    let mut browser = admin_browser(&app).await;

    // Act
    let first = browser.get("/admin/users?q=member").await;
    let next = next_href(&first.html).unwrap_or_else(|| panic!("{}", first.html));
    let second = browser.get(&next).await;
    let clients = browser.get("/admin/clients").await;
    let more = next_href(&clients.html).unwrap_or_else(|| panic!("{}", clients.html));
    let last_clients = browser.get(&more).await;

    // Assert
    assert_eq!(first.status, 200);
    assert_eq!(first.html.matches("<td>member-").count(), 100);
    assert!(first.html.contains("<td>member-099</td>"));
    assert_eq!(next, "/admin/users?q=member&after=member-099");
    assert_eq!(second.status, 200, "{}", second.html);
    assert_eq!(second.html.matches("<td>member-").count(), 20);
    assert!(second.html.contains("<td>member-119</td>"));
    assert!(next_href(&second.html).is_none());
    assert_eq!(clients.status, 200);
    assert!(!clients.html.contains("<code>zz-100</code>"));
    assert_eq!(last_clients.status, 200);
    assert!(
        last_clients.html.contains("<code>zz-100</code>"),
        "{}",
        last_clients.html
    );
    assert!(next_href(&last_clients.html).is_none());
}

/// Gives `username` (a new user) `n` logins and `n` browser sessions straight in
/// the store, one second apart, the newest now; returns their ids newest first.
async fn add_logins(app: &TestApp, username: &str, n: i64) -> (Vec<String>, Vec<String>) {
    add_users(app, &[username.to_owned()]).await;
    let user = app.store.find_user(username).await.unwrap().unwrap();
    let now = app.clock.now();
    let (mut families, mut sessions) = (Vec::new(), Vec::new());
    for i in 0..n {
        let at = now - time::Duration::seconds(i);
        let family_id = Uuid::new_v4();
        app.store
            .create_family(&NewFamily {
                family_id,
                client_id: app.client.id.clone(),
                user_id: Some(user.id),
                scope: "read".into(),
                created_at: at,
                session_id: None,
                offline: false,
                expires_at: None,
                dpop_jkt: None,
                refresh: None,
                access: NewAccessToken {
                    jti: Uuid::new_v4(),
                    issued_at: at,
                    expires_at: at + Duration::from_secs(60),
                },
            })
            .await
            .unwrap();
        families.push(family_id.to_string());
        let session_id = Uuid::new_v4();
        app.store
            .create_session(&NewBrowserSession {
                id: session_id,
                hash: SessionToken::generate().hash(),
                user_id: user.id,
                created_at: at,
                expires_at: at + Duration::from_secs(3600),
                ip: None,
            })
            .await
            .unwrap();
        sessions.push(session_id.to_string());
    }
    (families, sessions)
}

async fn a_users_logins_and_sessions_are_paged_newest_first_by_link(db: Db) {
    // Arrange: a name that must be escaped in the links' paths.
    let app = spawn_app(db).await;
    let ops = ops_client(&app).await;
    let admin = admin_token(&app, &ops).await;
    let (families, sessions) = add_logins(&app, "ann é+1", 5).await;

    for (what, expected) in [("families", families), ("sessions", sessions)] {
        // Act: follow the links, two a page.
        let mut seen = Vec::new();
        let mut links = Vec::new();
        let mut path = Some(format!("users/ann%20%C3%A9%2B1/{what}?limit=2"));
        while let Some(p) = path {
            let page = call(&app, "GET", &p, Some(&admin), None).await;
            page.assert_ok();
            let ids = names(&page, "id");
            assert!(ids.len() <= 2, "{ids:?}");
            seen.extend(ids);
            path = next_of(&page);
            links.extend(path.clone());
            assert!(seen.len() < 100, "the pages never end: {seen:?}");
        }

        // Assert: every row once, newest first; two links for five rows.
        assert_eq!(seen, expected, "{what}");
        assert_eq!(links.len(), 2, "{links:?}");
        assert!(
            links[0].starts_with(&format!("users/ann%20%C3%A9%2B1/{what}?limit=2&before=")),
            "{links:?}"
        );
        for bad in ["before=x", "before=1.2", "limit=x", "after=a", "before=%07"] {
            let p = format!("users/ann%20%C3%A9%2B1/{what}?{bad}");
            call(&app, "GET", &p, Some(&admin), None)
                .await
                .assert_error(400, "invalid_request");
        }
        let p = format!("users/nobody/{what}");
        call(&app, "GET", &p, Some(&admin), None)
            .await
            .assert_error(404, "not_found");
    }
}

async fn the_console_pages_a_users_logins_and_sessions_apart(db: Db) {
    // Arrange: one more of each than a page holds (100).
    let app = spawn_app(db).await;
    let (families, sessions) = add_logins(&app, "many", 101).await;
    let mut browser = admin_browser(&app).await;

    // Act: the older logins, then the older sessions of that page.
    let first = browser.get("/admin/families?user=many").await;
    let older = next_hrefs(&first.html);
    let older_logins = browser.get(&older[0]).await;
    let both = next_hrefs(&older_logins.html);
    let older_sessions = browser.get(&both[0]).await;

    // Assert
    assert_eq!(first.status, 200, "{}", first.html);
    assert_eq!(older.len(), 2, "{older:?}");
    assert!(first.lists(&families[99]));
    assert!(!first.lists(&families[100]));
    assert!(first.lists(&sessions[99]));
    assert!(!first.lists(&sessions[100]));
    assert_eq!(older_logins.status, 200, "{}", older_logins.html);
    assert!(older_logins.lists(&families[100]));
    assert!(!older_logins.lists(&families[99]));
    assert!(older_logins.lists(&sessions[99]), "sessions stay put");
    assert_eq!(both.len(), 1, "only the sessions have more: {both:?}");
    assert_eq!(older_sessions.status, 200, "{}", older_sessions.html);
    assert!(older_sessions.lists(&families[100]), "logins stay put");
    assert!(older_sessions.lists(&sessions[100]));
    assert!(!older_sessions.lists(&sessions[99]));
    assert!(next_hrefs(&older_sessions.html).is_empty());
    let bad = browser
        .get("/admin/families?user=many&before=nonsense")
        .await;
    assert_eq!(bad.status, 400, "{}", bad.html);
}

/// What a console page lists: a login or session id as its row shows it (an id
/// also appears inside the positions of the page's links).
trait Lists {
    fn lists(&self, id: &str) -> bool;
}

impl Lists for crate::browser::Seen {
    fn lists(&self, id: &str) -> bool {
        self.html.contains(&format!("<code>{id}</code>"))
    }
}

/// The hrefs of every `rel="next"` link of a page, unescaped.
fn next_hrefs(html: &str) -> Vec<String> {
    html.split("<a href=\"")
        .filter_map(|a| a.split_once("\" rel=\"next\""))
        .map(|(href, _)| {
            href.replace("&#38;", "&")
                .replace("&amp;", "&")
                .replace("&#x2f;", "/")
        })
        .collect()
}
