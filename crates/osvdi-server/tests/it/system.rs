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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_the_video_encoders_found_at_start() {
    let s = TestServer::start(Db::Sqlite, |_| {}).await.unwrap();
    let (st, display) = s.get("/api/v1/admin/display", &s.admin).await;
    assert_eq!(st, StatusCode::OK, "{display}");
    assert_eq!(display["encoder"], "openh264");
    let encoders = display["encoders"].as_array().unwrap();
    let names: Vec<_> = encoders
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["openh264", "libx264", "h264_nvenc", "h264_vaapi"]);
    assert_eq!(encoders[0]["usable"], true, "{display}");
    // Without the GPU (or the `ffmpeg` feature) the others say why.
    assert_eq!(encoders[2]["usable"], false, "{display}");
    assert!(!encoders[2]["detail"].as_str().unwrap().is_empty());
    let user = s.user("uwe", "user").await;
    assert_eq!(
        s.get("/api/v1/admin/display", &user).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vgpu_desktop_gets_an_mdev_instance_and_gives_it_back() {
    // A copy of the NVIDIA M60 fixture; the kernel's side of writes is simulated.
    let tree = tempfile::TempDir::new().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../osvdi-compute/tests/fixtures/sysfs-nvidia");
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", fixture.display()))
            .arg(tree.path())
            .status()
            .unwrap()
            .success()
    );
    let s = TestServer::with_desktops_and_gpus(tree.path()).await;
    let template = s
        .demo_template("GPU desktop", serde_json::json!({"vgpu_type": "nvidia-18"}))
        .await;
    let (st, d) = s
        .post(
            "/api/v1/sessions",
            &s.admin,
            serde_json::json!({"template_id": template}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "the scheduler sees the GPUs: {d}");
    let id = d["id"].as_str().unwrap().to_owned();
    // QEMU cannot open a simulated vfio device: the desktop fails, with QEMU's reason...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let failed = loop {
        let (_, d) = s.get(&format!("/api/v1/sessions/{id}"), &s.admin).await;
        if d["state"] == "failed" {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "{d}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        failed["reason"].as_str().unwrap().contains("vfio"),
        "{failed}"
    );
    // (QEMU's complaint about vfio shows it was given the allocated instance's device),
    // and the instance is given back.
    let (_, gpus) = s.get("/api/v1/admin/gpus", &s.admin).await;
    let instances: usize = gpus
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["instances"].as_array().unwrap().len())
        .sum();
    assert_eq!(instances, 0, "released: {gpus}");
    let nvidia18 = gpus[0]["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "nvidia-18")
        .unwrap()
        .clone();
    assert_eq!(
        nvidia18["available_instances"], 4,
        "all nvidia-18 instances free again: {gpus}"
    );
    // A type no GPU offers is refused by the scheduler with the reason.
    let other = s
        .demo_template("Other GPU", serde_json::json!({"vgpu_type": "nvidia-99"}))
        .await;
    let (st, body) = s
        .post(
            "/api/v1/sessions",
            &s.admin,
            serde_json::json!({"template_id": other}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nvidia-99"),
        "{body}"
    );
}
