//! Courses and the scheduler in the product: admission control of bookings, on-demand
//! desktops shortened or refused for reservations, members drawing the reserved desktops.
//! The host is declared small (2 desktops of the demo template) so that reservations bite.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Db, TestServer};

fn rfc3339_in(minutes: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = UNIX_EPOCH + Duration::from_secs((now + minutes * 60) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courses_are_admitted_and_reserved_desktops_go_to_members() {
    let s = TestServer::with_desktops(Db::Sqlite, |c| {
        c.host_vcpus = 2;
        c.host_memory_mb = 4096;
        c.max_desktops_per_user = 5;
    })
    .await
    .unwrap();
    let template = s
        .demo_template("Course image", json!({"max_lifetime_min": 120}))
        .await;
    let steward = s.user("sam", "steward").await;
    let mia = s.user("mia", "user").await;
    let bob = s.user("bob", "user").await;
    s.post("/api/v1/groups", &s.admin, json!({"name": "lab"}))
        .await;
    s.call(
        Method::PUT,
        "/api/v1/groups/lab/members/mia",
        Some(&s.admin),
        None,
    )
    .await;

    // The steward of the template books the whole host for an hour, starting in 10 minutes.
    let course = |name: &str, desktops: u32, from: i64, to: i64| {
        json!({"name": name, "template_id": template, "group": "lab", "desktops": desktops,
               "schedule": {"once": {"start": rfc3339_in(from), "end": rfc3339_in(to)}}})
    };
    let (st, body) = s
        .post("/api/v1/courses", &steward, course("Lab", 2, 10, 70))
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "stewards book courses on their own templates: {body}"
    );
    let (st, lab) = s
        .post("/api/v1/courses", &s.admin, course("Lab", 2, 10, 70))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{lab}");
    let (st, body) = s
        .post("/api/v1/courses", &s.admin, course("Overlap", 1, 60, 90))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Course") && msg.contains("does not fit in slot 0"),
        "{msg}"
    );
    assert_eq!(
        s.post("/api/v1/courses", &s.admin, course("Later", 1, 70, 90))
            .await
            .0,
        StatusCode::CREATED
    );
    let (_, mine) = s.get("/api/v1/courses", &mia).await;
    assert_eq!(
        mine.as_array().unwrap().len(),
        2,
        "members see their group's courses"
    );
    assert_eq!(s.get("/api/v1/courses", &bob).await.1, json!([]));
    let (_, cal) = s.get("/api/v1/admin/capacity", &s.admin).await;
    assert_eq!(cal.as_array().unwrap().len(), 2, "{cal}");
    assert_eq!(cal[0]["reserved"], 2);

    // Now, before the slot: Bob gets a desktop, but only until the course starts.
    let (st, d) = s
        .post("/api/v1/sessions", &bob, json!({"template_id": template}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{d}");
    assert!(d["reason"].as_str().unwrap().contains("ends early"), "{d}");
    let bob_desktop = d["id"].as_str().unwrap().to_owned();
    let ends = humantime::parse_rfc3339(d["expires_at"].as_str().unwrap()).unwrap();
    let starts = humantime::parse_rfc3339(&rfc3339_in(10)).unwrap();
    let gap = ends.duration_since(starts).unwrap_or_else(|e| e.duration());
    assert!(
        gap < Duration::from_secs(5),
        "it ends when the course starts"
    );
    s.wait_state(&bob, &bob_desktop, "ready", 120).await;

    // In the slot: Bob's desktop has ended; Mia draws a reserved desktop; Bob finds no room.
    s.clock.advance(Duration::from_secs(11 * 60));
    let ended = s.wait_state(&bob, &bob_desktop, "ended", 30).await;
    assert!(
        ended["reason"]
            .as_str()
            .unwrap()
            .contains("maximum lifetime"),
        "{ended}"
    );
    let (st, d) = s
        .post("/api/v1/sessions", &mia, json!({"template_id": template}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{d}");
    let mia_desktop = d["id"].as_str().unwrap().to_owned();
    let (st, d2) = s
        .post("/api/v1/sessions", &mia, json!({"template_id": template}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "a second reserved desktop: {d2}");
    assert_eq!(d["course_id"], lab["id"], "drawn from the course: {d}");
    assert_eq!(d2["course_id"], lab["id"], "drawn from the course: {d2}");
    let (st, body) = s
        .post("/api/v1/sessions", &bob, json!({"template_id": template}))
        .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "the host is reserved for the course: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No room"),
        "{body}"
    );
    let (_, cal) = s.get("/api/v1/admin/capacity", &s.admin).await;
    assert_eq!(cal[0]["in_use"], 2, "{cal}");
    s.wait_state(&mia, &mia_desktop, "ready", 120).await;

    // Cancelling is for the creator and admins.
    let id = lab["id"].as_str().unwrap();
    assert_eq!(
        s.call(
            Method::DELETE,
            &format!("/api/v1/courses/{id}"),
            Some(&mia),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(
            Method::DELETE,
            &format!("/api/v1/courses/{id}"),
            Some(&s.admin),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, audit) = s.get("/api/v1/audit?action=course.create", &s.admin).await;
    let outcomes: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["success", "denied", "success"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_courses_are_checked_slot_by_slot() {
    let s = TestServer::start(Db::Sqlite, |c| {
        c.host_vcpus = 4;
        c.host_memory_mb = 8192;
    })
    .await
    .unwrap();
    let t = s.template(&s.admin, "Weekly").await; // 2 vCPUs each: 2 fit
    s.post("/api/v1/groups", &s.admin, json!({"name": "g"}))
        .await;
    let weekly = |name: &str, n: u32, days: Vec<&str>, start: &str, end: &str| {
        json!({"name": name, "template_id": t, "group": "g", "desktops": n,
               "schedule": {"weekly": {"first": "2027-03-01", "last": "2027-06-30", "days": days,
                                       "start": start, "end": end, "except": ["2027-04-06"],
                                       "time_zone": "Europe/Berlin"}}})
    };
    assert_eq!(
        s.post(
            "/api/v1/courses",
            &s.admin,
            weekly("A", 1, vec!["tue"], "10:00", "12:00")
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        s.post(
            "/api/v1/courses",
            &s.admin,
            weekly("B", 1, vec!["tue"], "11:00", "13:00")
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (st, body) = s
        .post(
            "/api/v1/courses",
            &s.admin,
            weekly("C", 1, vec!["mon", "tue"], "11:30", "12:30"),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "the third overlaps both on Tuesdays: {body}"
    );
    // Spans the start of summer time (28 March): split internally, still one course.
    let (st, c) = s
        .post(
            "/api/v1/courses",
            &s.admin,
            weekly("D", 2, vec!["wed"], "08:00", "10:00"),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    assert_eq!(c["schedule"]["weekly"]["time_zone"], "Europe/Berlin");
    for bad in [
        weekly("E", 0, vec!["fri"], "08:00", "10:00"),
        weekly("E", 1, vec![], "08:00", "10:00"),
        weekly("E", 1, vec!["fri"], "10:00", "08:00"),
    ] {
        assert_eq!(
            s.post("/api/v1/courses", &s.admin, bad).await.0,
            StatusCode::BAD_REQUEST
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_desktops_are_ready_at_launch_and_never_reused() {
    let s = TestServer::with_desktops(Db::Sqlite, |_| {}).await.unwrap();
    let template = s.demo_template("Warm", json!({"warm_pool": 1})).await;
    let alice = s.user("alice", "user").await;
    // The pool starts one desktop on its own, hidden from everyone but admins.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let warm_id = loop {
        let (_, all) = s.get("/api/v1/sessions?all=true&live=true", &s.admin).await;
        if let Some(d) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["state"] == "ready")
        {
            break d["id"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no warm desktop became ready: {all}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        s.get("/api/v1/sessions", &s.admin).await.1,
        json!([]),
        "not in its nominal owner's own list"
    );
    assert_eq!(
        s.call(
            Method::POST,
            &format!("/api/v1/sessions/{warm_id}/suspend"),
            Some(&alice),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Alice gets it at once, ready.
    let (st, d) = s
        .post("/api/v1/sessions", &alice, json!({"template_id": template}))
        .await;
    assert_eq!(
        (st, d["id"].as_str(), d["state"].as_str()),
        (StatusCode::ACCEPTED, Some(warm_id.as_str()), Some("ready")),
        "{d}"
    );
    let (_, mine) = s.get("/api/v1/sessions", &alice).await;
    assert_eq!(mine[0]["id"], warm_id.as_str());
    // The pool starts a fresh one; Alice's, once ended, is never handed out again.
    s.call(
        Method::DELETE,
        &format!("/api/v1/sessions/{warm_id}"),
        Some(&alice),
        None,
    )
    .await;
    s.wait_state(&alice, &warm_id, "ended", 60).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, all) = s.get("/api/v1/sessions?all=true&live=true", &s.admin).await;
        let others: Vec<&Value> = all
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["id"] != warm_id.as_str())
            .collect();
        if others.iter().any(|d| d["state"] == "ready") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pool was not refilled: {all}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn course_desktops_are_started_before_the_slot_and_go_to_members() {
    let s = TestServer::with_desktops(Db::Sqlite, |_| {}).await.unwrap();
    let template = s.demo_template("Lab image", json!({})).await;
    let mia = s.user("mia", "user").await;
    s.post("/api/v1/groups", &s.admin, json!({"name": "lab"}))
        .await;
    s.call(
        Method::PUT,
        "/api/v1/groups/lab/members/mia",
        Some(&s.admin),
        None,
    )
    .await;
    // Starts in 3 minutes: within the default lead time (5 minutes, nothing observed yet).
    let body = json!({"name": "Lab", "template_id": template, "group": "lab", "desktops": 1,
                      "schedule": {"once": {"start": rfc3339_in(3), "end": rfc3339_in(63)}}});
    let (st, course) = s.post("/api/v1/courses", &s.admin, body).await;
    assert_eq!(st, StatusCode::CREATED, "{course}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let warm = loop {
        let (_, all) = s.get("/api/v1/sessions?all=true&live=true", &s.admin).await;
        if let Some(d) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["state"] == "ready")
        {
            break d.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no course desktop started ahead: {all}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        warm["course_id"], course["id"],
        "started for the course: {warm}"
    );
    s.clock.advance(Duration::from_secs(4 * 60));
    let (st, d) = s
        .post("/api/v1/sessions", &mia, json!({"template_id": template}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{d}");
    assert_eq!(
        (d["id"].clone(), d["state"].as_str()),
        (warm["id"].clone(), Some("ready")),
        "the member gets the warm one: {d}"
    );
    assert_eq!(d["course_id"], course["id"]);
}
