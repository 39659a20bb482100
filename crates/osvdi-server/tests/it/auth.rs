//! Login, bearer tokens and cookies, logout, password change, rate limiting, expiry.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::db_tests;
use crate::support::{ADMIN_PW, Db, TestServer, USER_PW};

db_tests!(
    login_gives_a_token_and_an_http_only_cookie,
    wrong_password_and_unknown_user_look_the_same,
    repeated_failures_are_rate_limited,
    logout_ends_the_session,
    password_change_ends_other_sessions,
    malformed_requests_get_clear_errors,
    cookie_requests_from_other_sites_are_refused,
);

async fn login_gives_a_token_and_an_http_only_cookie(s: TestServer) {
    let res = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("osvdi_session=osvdi_"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["user"]["role"], "admin");

    let (st, me) = s.get("/api/v1/me", token).await;
    assert_eq!((st, me["name"].as_str()), (StatusCode::OK, Some("admin")));
    let cookie_value = cookie.split(';').next().unwrap();
    let res = s
        .http
        .get(s.url("/api/v1/me"))
        .header(header::COOKIE, cookie_value)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the cookie authenticates too");
    let (st, body) = s.call(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");
}

async fn wrong_password_and_unknown_user_look_the_same(s: TestServer) {
    let wrong = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": "nope-nope-nope"})),
        )
        .await;
    let unknown = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "ghost", "password": "nope-nope-nope"})),
        )
        .await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, unknown, "no user enumeration");
    let (_, audit) = s.get("/api/v1/audit?action=login", &s.admin).await;
    let denied: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 2, "{audit}");
    assert!(
        denied
            .iter()
            .any(|e| e["actor"] == "ghost" && e["detail"] == "unknown user")
    );
}

async fn repeated_failures_are_rate_limited(s: TestServer) {
    let _bob = s.user("bob", "user").await;
    let attempt = |pw: &'static str| {
        s.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "bob", "password": pw})),
        )
    };
    for _ in 0..5 {
        assert_eq!(
            attempt("wrong-password-x").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let res = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "bob", "password": USER_PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another user from the same address is not yet limited (5 < 20 per address).
    assert_eq!(
        s.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PW}))
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, metrics) = (
        StatusCode::OK,
        s.http
            .get(s.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        metrics.contains("osvdi_logins_total{outcome=\"rate_limited\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("osvdi_logins_total{outcome=\"denied\"} 5"),
        "{metrics}"
    );
}

async fn logout_ends_the_session(s: TestServer) {
    let other = s.login("admin", ADMIN_PW).await;
    let (st, _) = s
        .call(Method::POST, "/api/v1/auth/logout", Some(&other), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/api/v1/me", &other).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/api/v1/me", &s.admin).await.0,
        StatusCode::OK,
        "other sessions stay"
    );
}

async fn password_change_ends_other_sessions(s: TestServer) {
    let second = s.login("admin", ADMIN_PW).await;
    let change = |cur: &str, new: &str| json!({"current_password": cur, "new_password": new});
    let (st, body) = s
        .post(
            "/api/v1/auth/password",
            &s.admin,
            change("not-the-password", "brand-new-password"),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let (st, body) = s
        .post("/api/v1/auth/password", &s.admin, change(ADMIN_PW, "short"))
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (st, _) = s
        .post(
            "/api/v1/auth/password",
            &s.admin,
            change(ADMIN_PW, "brand-new-password"),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/api/v1/me", &s.admin).await.0,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        s.get("/api/v1/me", &second).await.0,
        StatusCode::UNAUTHORIZED,
        "the other one ends"
    );
    s.login("admin", "brand-new-password").await;
    let old = s
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PW})),
        )
        .await;
    assert_eq!(old.0, StatusCode::UNAUTHORIZED);
}

async fn malformed_requests_get_clear_errors(s: TestServer) {
    let res = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON body")
    );
    for token in [
        "garbage",
        "osvdi_",
        "osvdi_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert_eq!(
            s.get("/api/v1/me", token).await.0,
            StatusCode::UNAUTHORIZED,
            "{token}"
        );
    }
    let (st, body) = s.get("/api/v1/nothing-here", &s.admin).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

async fn cookie_requests_from_other_sites_are_refused(s: TestServer) {
    let cookie = format!("osvdi_session={}", s.admin);
    let host = s.base.trim_start_matches("http://").to_owned();
    let send = |origin: String| {
        s.http
            .post(s.url("/api/v1/groups"))
            .header(header::COOKIE, cookie.clone())
            .header(header::ORIGIN, origin)
            .json(&json!({"name": "physics"}))
            .send()
    };
    assert_eq!(
        send("https://evil.example".into()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(format!("http://{host}")).await.unwrap().status(),
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_refused() {
    let s = TestServer::start(Db::Sqlite, |c| c.session_ttl = Duration::from_millis(1500))
        .await
        .unwrap();
    assert_eq!(s.get("/api/v1/me", &s.admin).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        s.get("/api/v1/me", &s.admin).await.0,
        StatusCode::UNAUTHORIZED
    );
}
