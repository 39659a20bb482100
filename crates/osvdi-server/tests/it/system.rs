//! Health, metrics, OpenAPI.

use reqwest::StatusCode;

use crate::db_tests;
use crate::support::TestServer;

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
