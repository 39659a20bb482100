//! Templates: who sees them, who changes them, names, sharing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::db_tests;
use crate::support::{TestServer, good_qcow2};

db_tests!(
    users_see_only_templates_shared_with_them,
    only_the_steward_and_admins_change_a_template,
    template_names_are_unique_regardless_of_case,
    bad_template_fields_are_refused,
);

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn users_see_only_templates_shared_with_them(s: TestServer) {
    let steward = s.user("sam", "steward").await;
    let member = s.user("mia", "user").await;
    let outsider = s.user("olaf", "user").await;
    s.post("/api/v1/groups", &s.admin, json!({"name": "course-a"}))
        .await;
    s.call(
        Method::PUT,
        "/api/v1/groups/course-a/members/mia",
        Some(&s.admin),
        None,
    )
    .await;
    let id = s.template(&steward, "Course image").await;
    let path = format!("/api/v1/templates/{id}");

    // Private and without an image: only the steward (and admins) see it.
    assert_eq!(
        names(&s.get("/api/v1/templates", &steward).await.1),
        ["Course image"]
    );
    assert_eq!(
        names(&s.get("/api/v1/templates", &s.admin).await.1),
        ["Course image"]
    );
    assert!(names(&s.get("/api/v1/templates", &member).await.1).is_empty());
    assert_eq!(
        s.get(&path, &member).await.0,
        StatusCode::NOT_FOUND,
        "existence does not leak"
    );

    let sharing = format!("{path}/sharing");
    let (st, t) = s
        .call(
            Method::PUT,
            &sharing,
            Some(&steward),
            Some(json!({"visibility": "groups", "groups": ["course-a"]})),
        )
        .await;
    assert_eq!(
        (st, t["groups"].clone()),
        (StatusCode::OK, json!(["course-a"]))
    );
    assert!(
        names(&s.get("/api/v1/templates", &member).await.1).is_empty(),
        "nothing to launch until an image is ready"
    );
    let (st, _) = s.upload(&steward, &id, good_qcow2(s.dir.path())).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(
        names(&s.get("/api/v1/templates", &member).await.1),
        ["Course image"]
    );
    assert_eq!(s.get(&path, &member).await.0, StatusCode::OK);
    assert!(names(&s.get("/api/v1/templates", &outsider).await.1).is_empty());
    assert_eq!(s.get(&path, &outsider).await.0, StatusCode::NOT_FOUND);

    s.call(
        Method::PUT,
        &sharing,
        Some(&steward),
        Some(json!({"visibility": "everyone"})),
    )
    .await;
    assert_eq!(
        names(&s.get("/api/v1/templates", &outsider).await.1),
        ["Course image"]
    );
    s.call(
        Method::PUT,
        &sharing,
        Some(&steward),
        Some(json!({"visibility": "private"})),
    )
    .await;
    assert!(names(&s.get("/api/v1/templates", &member).await.1).is_empty());

    let (st, _) = s
        .call(
            Method::PUT,
            &sharing,
            Some(&steward),
            Some(json!({"visibility": "groups", "groups": ["nope"]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "unknown group");
    let (_, audit) = s.get("/api/v1/audit?action=template.share", &s.admin).await;
    assert_eq!(audit.as_array().unwrap().len(), 3);
}

async fn only_the_steward_and_admins_change_a_template(s: TestServer) {
    let steward = s.user("sam", "steward").await;
    let other = s.user("sue", "steward").await;
    let user = s.user("uma", "user").await;
    let id = s.template(&steward, "Mine").await;
    let path = format!("/api/v1/templates/{id}");
    s.call(
        Method::PUT,
        &format!("{path}/sharing"),
        Some(&steward),
        Some(json!({"visibility": "everyone"})),
    )
    .await;
    s.upload(&steward, &id, good_qcow2(s.dir.path())).await;

    assert_eq!(
        s.post(
            "/api/v1/templates",
            &user,
            json!({"name": "x", "vcpus": 1, "memory_mb": 512, "disk_gb": 1})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    for token in [&other, &user] {
        let patch = s
            .call(Method::PATCH, &path, Some(token), Some(json!({"vcpus": 4})))
            .await;
        assert_eq!(patch.0, StatusCode::FORBIDDEN);
        assert_eq!(
            s.upload(token, &id, good_qcow2(s.dir.path())).await.0,
            StatusCode::FORBIDDEN,
            "a user cannot upload"
        );
        assert_eq!(
            s.call(Method::DELETE, &path, Some(token), None).await.0,
            StatusCode::FORBIDDEN
        );
        let share = s
            .call(
                Method::PUT,
                &format!("{path}/sharing"),
                Some(token),
                Some(json!({"visibility": "private"})),
            )
            .await;
        assert_eq!(share.0, StatusCode::FORBIDDEN);
    }
    let (st, t) = s
        .call(
            Method::PATCH,
            &path,
            Some(&steward),
            Some(json!({"vcpus": 4, "tags": ["gpu", "course"]})),
        )
        .await;
    assert_eq!(
        (st, t["vcpus"].as_u64(), t["tags"].clone()),
        (StatusCode::OK, Some(4), json!(["gpu", "course"]))
    );
    let (st, t) = s
        .call(
            Method::PATCH,
            &path,
            Some(&s.admin),
            Some(json!({"description": "by the admin"})),
        )
        .await;
    assert_eq!(
        (st, t["description"].as_str()),
        (StatusCode::OK, Some("by the admin"))
    );
}

async fn template_names_are_unique_regardless_of_case(s: TestServer) {
    s.template(&s.admin, "Ubuntu Course").await;
    let (st, body) = s
        .post(
            "/api/v1/templates",
            &s.admin,
            json!({"name": "ubuntu course", "vcpus": 1, "memory_mb": 512, "disk_gb": 1}),
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let other = s.template(&s.admin, "Other").await;
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/templates/{other}"),
            Some(&s.admin),
            Some(json!({"name": "UBUNTU COURSE"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
}

async fn bad_template_fields_are_refused(s: TestServer) {
    let base = json!({"name": "T", "vcpus": 2, "memory_mb": 2048, "disk_gb": 10});
    let cases = [
        ("vcpus", json!(0)),
        ("memory_mb", json!(1)),
        ("disk_gb", json!(0)),
        ("protocols", json!(["rdp"])),
        ("protocols", json!([])),
        ("vgpu_type", json!("../../etc")),
        ("visibility", json!("public")),
        ("name", json!("  ")),
        ("vcpus", json!("two")),
    ];
    for (field, value) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let (st, res) = s.post("/api/v1/templates", &s.admin, body).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{field}={value}: {res}");
        assert!(res["error"]["message"].as_str().is_some());
    }
    let mut ok = base.clone();
    ok["vgpu_type"] = json!("nvidia-35");
    ok["protocols"] = json!(["vnc", "spice"]);
    assert_eq!(
        s.post("/api/v1/templates", &s.admin, ok).await.0,
        StatusCode::CREATED
    );
}
