//! Template access policies: networks (named and literal, through trusted proxies), time
//! windows with closed dates and extra openings, who is exempt, and auto-assign at login.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Db, TestServer, USER_PW, good_qcow2};

/// Today's weekday in UTC, as the API names it.
fn today() -> (&'static str, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = secs / 86_400;
    // 1970-01-01 was a Thursday.
    let name = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"][(days % 7) as usize];
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (name, format!("{y:04}-{m:02}-{d:02}"))
}

async fn setup(s: &TestServer) -> (String, String, String) {
    let steward = s.user("sam", "steward").await;
    let user = s.user("uli", "user").await;
    let id = s.template(&steward, "Lab").await;
    s.upload(&steward, &id, good_qcow2(s.dir.path())).await;
    s.call(
        Method::PUT,
        &format!("/api/v1/templates/{id}/sharing"),
        Some(&steward),
        Some(json!({"visibility": "everyone"})),
    )
    .await;
    (steward, user, id)
}

async fn set(s: &TestServer, token: &str, id: &str, policy: Value) -> (StatusCode, Value) {
    s.call(
        Method::PUT,
        &format!("/api/v1/templates/{id}/policy"),
        Some(token),
        Some(policy),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_named_literal_and_through_a_trusted_proxy() {
    let campus = |c: &mut osvdi_core::CoreConfig| {
        c.networks
            .insert("campus".into(), vec!["10.0.0.0/8".parse().unwrap()]);
    };
    let s = TestServer::start(Db::Sqlite, campus).await.unwrap();
    let (steward, user, id) = setup(&s).await;
    let (st, t) = set(&s, &steward, &id, json!({"networks": ["campus"]})).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["policy"]["networks"], json!(["campus"]));

    let (_, t) = s.get(&format!("/api/v1/templates/{id}"), &user).await;
    assert_eq!(t["available"], false);
    assert_eq!(t["access"], "available at any time from the campus network");
    assert!(
        t["denied_reason"]
            .as_str()
            .unwrap()
            .contains("you are connecting from 127.0.0.1"),
        "{t}"
    );
    let (st, body) = s
        .post("/api/v1/sessions", &user, json!({"template_id": id}))
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("campus network")
    );
    let (_, t) = s.get(&format!("/api/v1/templates/{id}"), &steward).await;
    assert_eq!(
        t["available"], true,
        "the template's steward is not bound by its policy"
    );

    set(
        &s,
        &steward,
        &id,
        json!({"networks": ["campus", "127.0.0.0/8"]}),
    )
    .await;
    let (_, t) = s.get(&format!("/api/v1/templates/{id}"), &user).await;
    assert_eq!(t["available"], true, "{t}");
    // Allowed by policy; this server has no compute backend, which is the next refusal.
    assert_eq!(
        s.post("/api/v1/sessions", &user, json!({"template_id": id}))
            .await
            .0,
        StatusCode::CONFLICT
    );

    for (bad, why) in [
        (json!({"networks": ["mars"]}), "Unknown network 'mars'"),
        (
            json!({"schedule": {"time_zone": "Mars/Base", "windows": []}}),
            "time zone",
        ),
        (
            json!({"schedule": {"time_zone": "UTC", "windows": [{"days": ["mon"], "start": "9:00", "end": "8:00"}]}}),
            "start before",
        ),
        (
            json!({"schedule": {"time_zone": "UTC", "windows": [{"days": ["funday"], "start": "8:00", "end": "9:00"}]}}),
            "day",
        ),
        (
            json!({"schedule": {"time_zone": "UTC", "windows": [{"days": ["mon"], "start": "25:00", "end": "26:00"}]}}),
            "time",
        ),
    ] {
        let (st, body) = set(&s, &steward, &id, bad.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(why),
            "{bad}: {body}"
        );
    }
    assert_eq!(
        set(&s, &user, &id, json!({})).await.0,
        StatusCode::FORBIDDEN,
        "users do not set policies"
    );

    // Behind a trusted proxy, the forwarded address counts; from anyone else it is ignored.
    let http = osvdi_server::HttpConfig {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Default::default()
    };
    let p = TestServer::start_with_http(Db::Sqlite, campus, http)
        .await
        .unwrap();
    let (steward, user, id) = setup(&p).await;
    set(&p, &steward, &id, json!({"networks": ["campus"]})).await;
    let forwarded = |ip: &'static str| {
        p.http
            .get(p.url(&format!("/api/v1/templates/{id}")))
            .bearer_auth(&user)
            .header("x-forwarded-for", ip)
            .send()
    };
    let t: Value = forwarded("10.9.8.7").await.unwrap().json().await.unwrap();
    assert_eq!(t["available"], true, "{t}");
    let t: Value = forwarded("192.0.2.1").await.unwrap().json().await.unwrap();
    assert_eq!(t["available"], false, "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_windows_closed_dates_and_extra_openings() {
    let s = TestServer::start(Db::Sqlite, |_| {}).await.unwrap();
    let (steward, user, id) = setup(&s).await;
    let (day, date) = today();
    let all_day = |days: Vec<&str>| json!({"days": days, "start": "00:00", "end": "24:00"});
    let other_days: Vec<&str> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .into_iter()
        .filter(|d| *d != day)
        .collect();

    let schedule = json!({"time_zone": "UTC", "windows": [all_day(other_days.clone())]});
    set(&s, &steward, &id, json!({"schedule": schedule})).await;
    let (_, t) = s.get(&format!("/api/v1/templates/{id}"), &user).await;
    assert_eq!(t["available"], false, "today is not in the windows: {t}");
    assert!(
        t["denied_reason"].as_str().unwrap().contains("it is now"),
        "{t}"
    );
    assert_eq!(
        s.post("/api/v1/sessions", &user, json!({"template_id": id}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let schedule = json!({"time_zone": "UTC", "windows": [all_day(other_days)],
                          "extra": [{"date": date, "start": "00:00", "end": "24:00"}]});
    set(&s, &steward, &id, json!({"schedule": schedule})).await;
    assert_eq!(
        s.get(&format!("/api/v1/templates/{id}"), &user).await.1["available"],
        true,
        "an extra opening today"
    );

    let schedule = json!({"time_zone": "UTC", "windows": [all_day(vec![day])], "closed": [date]});
    let (_, t) = set(&s, &steward, &id, json!({"schedule": schedule})).await;
    assert!(
        t["access"]
            .as_str()
            .unwrap()
            .contains(&format!("closed on {date}")),
        "{t}"
    );
    assert_eq!(
        s.get(&format!("/api/v1/templates/{id}"), &user).await.1["available"],
        false,
        "closed today"
    );

    let (_, audit) = s
        .get("/api/v1/audit?action=template.policy", &s.admin)
        .await;
    assert_eq!(audit.as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_assign_starts_the_only_template_at_login() {
    let s = TestServer::with_desktops(Db::Sqlite, |_| {}).await.unwrap();
    let id = s.demo_template("Exam desktop", json!({})).await;
    let (st, _) = set(&s, &s.admin, &id, json!({"auto_assign": true})).await;
    assert_eq!(st, StatusCode::OK);
    s.post(
        "/api/v1/users",
        &s.admin,
        json!({"name": "eve", "password": USER_PW}),
    )
    .await;
    let res = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "eve", "password": USER_PW}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let session = &body["session"];
    assert_eq!(session["template_id"], id.as_str(), "{body}");
    let token = body["token"].as_str().unwrap();
    let sid = session["id"].as_str().unwrap();
    s.wait_state(token, sid, "ready", 120).await;
    // Logging in again leads to the same desktop, not a second one.
    let again: Value = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "eve", "password": USER_PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["session"]["id"], sid);
    // With a second template to choose from, nothing is started.
    s.demo_template("Second", json!({})).await;
    let third: Value = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "eve", "password": USER_PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(third["session"], Value::Null);
}
