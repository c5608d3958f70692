//! The web UI's server side (docs/ui.md): sign-in by login token and by key,
//! sessions and their end, what needs a session, the API signed in by the
//! session cookie (and the `Sift-UI` header it needs to change anything),
//! the pages with their data, the CSV export and the live size stream.
//! The browser tests in `ui-tests/` drive the same pages in Chromium.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value as Json, json};
use tower::ServiceExt;

use crate::common::{ADMIN_KEY, Server};

async fn raw(server: &Server, request: Request<Body>) -> Response<Body> {
    server.app.clone().oneshot(request).await.unwrap()
}

async fn text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().uri(path);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, format!("sift_session={cookie}"));
    }
    builder.body(Body::empty()).unwrap()
}

fn location(response: &Response<Body>) -> &str {
    response.headers()[header::LOCATION].to_str().unwrap()
}

/// The session cookie a response sets, checked for its attributes.
fn session_from(response: &Response<Body>) -> String {
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    let value = set.split(';').next().unwrap();
    value.strip_prefix("sift_session=").unwrap().to_string()
}

async fn sign_in(server: &Server) -> String {
    let token = server.state.sessions.mint_login_token(&server.workspace_id);
    let response = raw(server, get(&format!("/ui/login?token={token}"), None)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/ui/segments");
    assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
    session_from(&response)
}

async fn page(server: &Server, path: &str, cookie: &str) -> String {
    let response = raw(server, get(path, Some(cookie))).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    text(response).await
}

#[tokio::test]
async fn the_printed_login_token_signs_in_and_leaves_the_address_bar() {
    let server = Server::new();
    let cookie = sign_in(&server).await;
    let html = page(&server, "/ui/segments", &cookie).await;
    assert!(html.contains("Create your first segment"), "{html}");
    // The token works again until the server stops (like Jupyter's).
    sign_in(&server).await;
    let bad = raw(&server, get("/ui/login?token=lt_nope", None)).await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(!bad.headers().contains_key(header::SET_COOKIE));
    assert!(text(bad).await.contains("no longer valid"));
}

#[tokio::test]
async fn nothing_with_data_is_reachable_without_a_session() {
    let server = Server::new();
    let id = server.segment("Spain", "country = \"ES\"").await;
    for path in [
        "/ui/segments".to_string(),
        format!("/ui/segments/{id}"),
        format!("/ui/segments/{id}/contacts"),
        "/ui/contacts".to_string(),
        "/ui/fields".to_string(),
        "/ui/segments/new".to_string(),
        "/ui/workflows".to_string(),
        "/ui/workflows/new".to_string(),
        "/ui/live/sizes".to_string(),
    ] {
        for cookie in [None, Some("ss_forged")] {
            let response = raw(&server, get(&path, cookie)).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
            assert_eq!(location(&response), "/ui/login", "{path}");
        }
    }
    for asset in [
        "app.js",
        "segment_form.js",
        "workflows.js",
        "builder_terms.js",
        "builder_widgets.js",
        "builder_rows.js",
        "builder_preview.js",
        "builder_groups.js",
        "builder_where.js",
        "builder_suggest.js",
        "builder_history.js",
        "workflow_builder.js",
        "builder.css",
        "builder_parts.css",
    ] {
        let response = raw(&server, get(&format!("/ui/assets/{asset}"), None)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{asset}");
    }
    // What the login page itself needs carries no data.
    let css = raw(&server, get("/ui/assets/app.css", None)).await;
    assert_eq!(css.status(), StatusCode::OK);
    let (status, _) = crate::common::send(&server.app, "GET", "/v1/segments", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let login = raw(&server, get("/ui/login", None)).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert!(text(login).await.contains("Workspace key"));
}

fn form(key: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/ui/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("key={key}")))
        .unwrap()
}

#[tokio::test]
async fn a_pasted_key_signs_in_until_the_key_is_revoked_or_the_user_signs_out() {
    let server = Server::new();
    let wrong = raw(&server, form("sk_00000000000000000000000000000000")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(text(wrong).await.contains("Unknown or revoked key"));
    let admin = raw(&server, form(ADMIN_KEY)).await;
    assert_eq!(admin.status(), StatusCode::FORBIDDEN);

    let response = raw(&server, form(&server.key)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = session_from(&response);
    page(&server, "/ui/fields", &cookie).await;

    // Signing out ends the session at once.
    let out = Request::builder()
        .method("POST")
        .uri("/ui/logout")
        .header(header::COOKIE, format!("sift_session={cookie}"))
        .body(Body::empty())
        .unwrap();
    let out = raw(&server, out).await;
    assert_eq!(location(&out), "/ui/login");
    assert!(
        out.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = raw(&server, get("/ui/fields", Some(&cookie))).await;
    assert_eq!(location(&after), "/ui/login");

    // A session made from a key ends when the key is revoked.
    let second = server.state.add_key(&server.workspace_id).unwrap();
    let cookie = session_from(&raw(&server, form(&second)).await);
    page(&server, "/ui/fields", &cookie).await;
    assert!(
        server
            .state
            .revoke_key(&server.workspace_id, &second)
            .unwrap()
    );
    let after = raw(&server, get("/ui/fields", Some(&cookie))).await;
    assert_eq!(location(&after), "/ui/login");
}

fn api(
    method: &str,
    path: &str,
    cookie: &str,
    marked: bool,
    body: serde_json::Value,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, format!("sift_session={cookie}"))
        .header(header::CONTENT_TYPE, "application/json");
    if marked {
        builder = builder.header("sift-ui", "1");
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn the_api_takes_the_session_cookie_and_needs_the_ui_header_to_change_anything() {
    let server = Server::new();
    let cookie = sign_in(&server).await;
    let body = json!({"name": "Spain", "kind": "dynamic", "condition": "country = \"ES\""});
    let refused = raw(
        &server,
        api("POST", "/v1/segments", &cookie, false, body.clone()),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(text(refused).await.contains("Sift-UI: 1"));
    assert!(
        server.get("/v1/segments").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let created = raw(&server, api("POST", "/v1/segments", &cookie, true, body)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let listed = raw(
        &server,
        api("GET", "/v1/segments", &cookie, false, json!(null)),
    )
    .await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert!(text(listed).await.contains("Spain"));

    // A session of one workspace sees nothing of another's.
    let (other, other_key) = server.state.create_workspace("Other").unwrap();
    let token = server.state.sessions.mint_login_token(&other);
    let other_cookie =
        session_from(&raw(&server, get(&format!("/ui/login?token={token}"), None)).await);
    let theirs = raw(
        &server,
        api("GET", "/v1/segments", &other_cookie, false, json!(null)),
    )
    .await;
    assert!(!text(theirs).await.contains("Spain"));
    let (_, mine) =
        crate::common::send(&server.app, "GET", "/v1/segments", Some(&other_key), None).await;
    assert_eq!(mine["items"], json!([]));
}

#[tokio::test]
async fn pages_show_the_workspace_data() {
    let server = Server::new();
    let cookie = sign_in(&server).await;
    server
        .put_contact(
            "ana",
            json!({"email": "ana@example.com", "country": "ES", "interests": ["shoes"]}),
        )
        .await;
    server
        .put_contact("bob", json!({"email": "bob@example.com", "country": "FR"}))
        .await;
    let spain = server
        .segment(
            "Spain <&>",
            "country = \"ES\" and interests contains \"shoes\"",
        )
        .await;
    let gifted = server.static_segment("Gifted").await;

    let list = page(&server, "/ui/segments", &cookie).await;
    assert!(
        list.contains("Spain &lt;&amp;&gt;"),
        "names are escaped: {list}"
    );
    assert!(list.contains(&format!("data-segment-id=\"{spain}\"")));
    assert!(list.contains("<td class=\"size num\">1</td>"), "{list}");
    assert!(list.contains(">Static<"), "{list}");

    let show = page(
        &server,
        &format!("/ui/segments/{spain}?entered=1&exited=0"),
        &cookie,
    )
    .await;
    assert!(show.contains("id=\"segment-size\""), "{show}");
    assert!(
        show.contains("Country</span> is &quot;ES&quot;"),
        "the definition in words: {show}"
    );
    assert!(show.contains("1 entered, 0 exited"), "{show}");
    assert!(
        show.contains("data-seq=\"1\""),
        "the entry is in the recent changes: {show}"
    );

    let members = page(
        &server,
        &format!("/ui/segments/{spain}/contacts?columns=email&columns=country"),
        &cookie,
    )
    .await;
    assert!(members.contains("data-contact-id=\"ana\""));
    assert!(!members.contains("data-contact-id=\"bob\""));
    assert!(members.contains("<td>ES</td>"), "{members}");

    let why = page(
        &server,
        &format!("/ui/contacts/bob?explain={spain}"),
        &cookie,
    )
    .await;
    assert!(why.contains("data-member=\"false\""), "{why}");
    assert!(why.contains("data-result=\"false\""), "{why}");
    assert!(why.contains("FR"), "the value bob has: {why}");
    let static_why = page(
        &server,
        &format!("/ui/contacts/ana?explain={gifted}"),
        &cookie,
    )
    .await;
    assert!(static_why.contains("static segment"), "{static_why}");

    let search = page(&server, "/ui/contacts?q=BOB@", &cookie).await;
    assert!(
        search.contains("data-contact-id=\"bob\"") && !search.contains("data-contact-id=\"ana\"")
    );
    let fields = page(&server, "/ui/fields", &cookie).await;
    assert!(fields.contains("data-field=\"birth_date\""));
    let edit = page(&server, &format!("/ui/segments/{spain}/edit"), &cookie).await;
    assert!(edit.contains("data-condition-tree="), "{edit}");
    let usages = page(&server, &format!("/ui/segments/{gifted}/usages"), &cookie).await;
    assert!(usages.contains("Nothing refers to this segment"));

    let missing = raw(&server, get("/ui/segments/seg_nope", Some(&cookie))).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(text(missing).await.contains("no segment with id"));
}

#[tokio::test]
async fn export_csv_streams_the_members_with_the_chosen_columns() {
    let server = Server::new();
    server.put_contact("ana", json!({"email": "ana@example.com", "first_name": "Ana, \"la\"", "interests": ["shoes", "bags"]})).await;
    server
        .put_contact("bob", json!({"email": "bob@example.com"}))
        .await;
    let all = server.segment("With email", "email is set").await;
    let (status, csv) = crate::common::send(
        &server.app,
        "GET",
        &format!("/v1/segments/{all}/export.csv?fields=id,email,first_name,interests"),
        Some(&server.key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        csv.as_str().unwrap(),
        "id,email,first_name,interests\r\nana,ana@example.com,\"Ana, \"\"la\"\"\",bags|shoes\r\nbob,bob@example.com,,\r\n"
    );
    let (status, error) = crate::common::send(
        &server.app,
        "GET",
        &format!("/v1/segments/{all}/export.csv?fields=id,nope"),
        Some(&server.key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["details"]["column"], "nope");
}

#[tokio::test]
async fn the_live_size_stream_starts_with_every_size() {
    let server = Server::new();
    let cookie = sign_in(&server).await;
    server.put_contact("ana", json!({"country": "ES"})).await;
    let spain = server.segment("Spain", "country = \"ES\"").await;
    let response = raw(&server, get("/ui/live/sizes", Some(&cookie))).await;
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first = String::from_utf8(frame.to_vec()).unwrap();
    assert!(first.starts_with("event: sizes"), "{first}");
    assert!(first.contains(&format!("\"{spain}\":1")), "{first}");
}

#[tokio::test]
async fn the_export_job_stream_follows_the_job_without_its_token() {
    let (server, _fake, job) = crate::facebook_fake::one_member_export(Vec::new()).await;
    let id = job["id"].as_str().unwrap();
    crate::facebook_fake::wait_job(&server, id, crate::facebook_fake::finished).await;
    let cookie = sign_in(&server).await;
    let response = raw(
        &server,
        get(&format!("/ui/live/exports/{id}"), Some(&cookie)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first = String::from_utf8(frame.to_vec()).unwrap();
    assert!(first.starts_with("event: job"), "{first}");
    let data: Json =
        serde_json::from_str(first.lines().nth(1).unwrap().trim_start_matches("data: ")).unwrap();
    assert_eq!(
        (
            data["id"].as_str(),
            data["state"].as_str(),
            data["sent"].as_u64()
        ),
        (Some(id), Some("done"), Some(1))
    );
    assert!(!first.contains(crate::facebook_fake::TOKEN), "{first}");

    let missing = raw(&server, get("/ui/live/exports/fbx_nope", Some(&cookie))).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let signed_out = raw(&server, get(&format!("/ui/live/exports/{id}"), None)).await;
    // Like every page: the live stream sends a signed-out browser to sign in.
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_out), "/ui/login");
}
