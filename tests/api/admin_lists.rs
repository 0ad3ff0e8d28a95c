//! The admin API's and the console's lists of users and clients: paged by key
//! (`after`, a `Link: <…>; rel="next"` header, a "Next" link), searched in the
//! store with `%` and `_` taken literally.

use rotor::store::{ClientRecord, UserRecord};
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

/// The href of a page's `rel="next"` link, unescaped.
fn next_href(html: &str) -> Option<String> {
    html.split("<a href=\"")
        .filter_map(|a| a.split_once("\" rel=\"next\""))
        .map(|(href, _)| {
            href.replace("&#38;", "&")
                .replace("&amp;", "&")
                .replace("&#x2f;", "/")
        })
        .next()
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
