//! Health, metrics, OpenAPI.

use reqwest::StatusCode;

use crate::db_tests;
use crate::support::{Db, TestServer};

db_tests!(health_metrics_and_openapi);

async fn health_metrics_and_openapi(s: TestServer) {
    let res = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(
        metrics.status(),
        StatusCode::OK,
        "loopback may read metrics"
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            "osvdi_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("osvdi_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("osvdi_logins_total{outcome=\"success\"} 1"),
        "{text}"
    );

    let (st, doc) = s.get("/api/v1/openapi.json", &s.admin).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/templates/{id}/image",
        "/api/v1/audit",
        "/api/v1/groups/{name}/members/{user}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["TemplateDto"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_the_gpu_inventory() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../osvdi-compute/tests/fixtures/sysfs-nvidia");
    let s = TestServer::start(Db::Sqlite, |c| c.sysfs_root = fixture)
        .await
        .unwrap();
    let (st, gpus) = s.get("/api/v1/admin/gpus", &s.admin).await;
    assert_eq!(st, StatusCode::OK, "{gpus}");
    let gpus = gpus.as_array().unwrap();
    assert_eq!(gpus.len(), 2, "two M60 GPUs");
    assert_eq!(gpus[0]["vendor"], "nvidia");
    assert_eq!(gpus[0]["single_type"], true);
    assert_eq!(gpus[0]["active_type"], serde_json::Value::Null);
    let types = gpus[0]["types"].as_array().unwrap();
    assert!(
        types
            .iter()
            .any(|t| t["id"] == "nvidia-18" && t["device_api"] == "vfio-pci"),
        "{types:?}"
    );
    let user = s.user("uwe", "steward").await;
    assert_eq!(
        s.get("/api/v1/admin/gpus", &user).await.0,
        StatusCode::FORBIDDEN
    );
}
