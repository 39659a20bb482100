//! Accounts and groups: who may manage them, and the rules that protect the site.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::db_tests;
use crate::support::{TestServer, USER_PW};

db_tests!(
    only_admins_manage_accounts_and_read_the_audit_log,
    groups_and_members,
    role_changes_apply_at_once_and_keep_one_admin,
    account_names_are_checked,
);

async fn only_admins_manage_accounts_and_read_the_audit_log(s: TestServer) {
    let user = s.user("alice", "user").await;
    let steward = s.user("sam", "steward").await;
    for token in [&user, &steward] {
        assert_eq!(s.get("/api/v1/users", token).await.0, StatusCode::FORBIDDEN);
        assert_eq!(s.get("/api/v1/audit", token).await.0, StatusCode::FORBIDDEN);
        let (st, body) = s
            .post(
                "/api/v1/users",
                token,
                json!({"name": "x", "password": USER_PW}),
            )
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        assert_eq!(
            s.post("/api/v1/groups", token, json!({"name": "g"}))
                .await
                .0,
            StatusCode::FORBIDDEN
        );
    }
    let (st, users) = s.get("/api/v1/users", &s.admin).await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice", "sam"]);
    assert!(
        users.to_string().find("argon2").is_none(),
        "no hashes in answers"
    );
    let (st, _) = s
        .post(
            "/api/v1/users",
            &s.admin,
            json!({"name": "alice", "password": USER_PW}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
}

async fn groups_and_members(s: TestServer) {
    let alice = s.user("alice", "user").await;
    assert_eq!(
        s.post("/api/v1/groups", &s.admin, json!({"name": "physics"}))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        s.post("/api/v1/groups", &s.admin, json!({"name": "physics"}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    let put = s
        .call(
            Method::PUT,
            "/api/v1/groups/physics/members/alice",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(put.0, StatusCode::NO_CONTENT);
    let again = s
        .call(
            Method::PUT,
            "/api/v1/groups/physics/members/alice",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(again.0, StatusCode::NO_CONTENT, "idempotent");
    let ghost = s
        .call(
            Method::PUT,
            "/api/v1/groups/physics/members/ghost",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(ghost.0, StatusCode::NOT_FOUND);
    let (_, me) = s.get("/api/v1/me", &alice).await;
    assert_eq!(me["groups"], json!(["physics"]));
    let (_, groups) = s.get("/api/v1/groups", &alice).await;
    assert_eq!(
        groups[0]["members"],
        json!(["alice"]),
        "members see their own groups"
    );
    let del = s
        .call(
            Method::DELETE,
            "/api/v1/groups/physics/members/alice",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(del.0, StatusCode::NO_CONTENT);
    let (_, me) = s.get("/api/v1/me", &alice).await;
    assert_eq!(me["groups"], json!([]));
    let (_, audit) = s.get("/api/v1/audit?limit=3", &s.admin).await;
    let actions: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["group.member_remove", "group.member_add", "group.create"]
    );
}

async fn role_changes_apply_at_once_and_keep_one_admin(s: TestServer) {
    let bob = s.user("bob", "user").await;
    let (st, body) = s
        .call(
            Method::PATCH,
            "/api/v1/users/bob",
            Some(&s.admin),
            Some(json!({"role": "steward"})),
        )
        .await;
    assert_eq!(
        (st, body["role"].as_str()),
        (StatusCode::OK, Some("steward"))
    );
    assert_eq!(
        s.get("/api/v1/me", &bob).await.0,
        StatusCode::UNAUTHORIZED,
        "sessions end on a role change"
    );
    let (st, body) = s
        .call(
            Method::PATCH,
            "/api/v1/users/admin",
            Some(&s.admin),
            Some(json!({"role": "user"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    let (st, _) = s
        .call(Method::DELETE, "/api/v1/users/admin", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "no deleting oneself");
    let (st, _) = s
        .call(Method::DELETE, "/api/v1/users/bob", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, audit) = s.get("/api/v1/audit?action=user.role", &s.admin).await;
    assert_eq!(audit[0]["detail"], "user -> steward");
}

async fn account_names_are_checked(s: TestServer) {
    for bad in ["", "Bob", "-x", "a b", "ü"] {
        let (st, _) = s
            .post(
                "/api/v1/users",
                &s.admin,
                json!({"name": bad, "password": USER_PW}),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let (st, _) = s
        .post(
            "/api/v1/users",
            &s.admin,
            json!({"name": "ok", "role": "emperor", "password": USER_PW}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .post(
            "/api/v1/users",
            &s.admin,
            json!({"name": "ok", "password": "short"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
