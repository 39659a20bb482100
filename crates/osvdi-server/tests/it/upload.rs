//! Image uploads: verification, refusals that keep nothing, versions, deletion rules.

use base64::Engine as _;
use osvdi_model::{Desktop, DesktopState, TemplateId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::db_tests;
use crate::support::{Db, TestServer, good_qcow2, qemu_img};

db_tests!(
    a_good_qcow2_becomes_version_1,
    new_uploads_are_new_versions_and_desktops_keep_theirs,
    a_backing_file_is_refused_and_nothing_kept,
    garbage_and_foreign_formats_are_refused,
    a_truncated_upload_is_refused_and_nothing_kept,
    a_checksum_mismatch_is_refused,
);

/// Asserts that a refused upload left no version and no file behind.
async fn nothing_kept(s: &TestServer, id: &str) {
    let (_, versions) = s
        .get(&format!("/api/v1/templates/{id}/versions"), &s.admin)
        .await;
    assert_eq!(versions, json!([]), "no version");
    let (_, t) = s.get(&format!("/api/v1/templates/{id}"), &s.admin).await;
    assert_eq!(t["current_version"], Value::Null);
    assert!(
        s.image_files().is_empty(),
        "no files: {:?}",
        s.image_files()
    );
}

async fn a_good_qcow2_becomes_version_1(s: TestServer) {
    let id = s.template(&s.admin, "Good").await;
    let bytes = good_qcow2(s.dir.path());
    let digest = Sha256::digest(&bytes);
    let res = s
        .http
        .put(s.url(&format!("/api/v1/templates/{id}/image")))
        .bearer_auth(&s.admin)
        .header(
            "content-digest",
            format!(
                "sha-256=:{}:",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
        )
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["state"], "ready");
    assert_eq!(v["format"], "qcow2");
    assert_eq!(v["virtual_size"], 64 << 20);
    assert_eq!(v["size_bytes"], bytes.len());
    assert_eq!(v["sha256"], hex::encode(digest));
    let (_, t) = s.get(&format!("/api/v1/templates/{id}"), &s.admin).await;
    assert_eq!(t["current_version"], 1);
    assert_eq!(s.image_files(), [format!("{id}/1.qcow2")]);
    let stored = std::fs::read(s.dir.path().join(format!("images/{id}/1.qcow2"))).unwrap();
    assert_eq!(stored, bytes);

    // A raw disk with a partition table is accepted too.
    let (_, mut raw) = qemu_img(s.dir.path(), "disk.raw", &["-f", "raw"], "1M");
    raw[510] = 0x55;
    raw[511] = 0xAA;
    let (st, v) = s.upload(&s.admin, &id, raw).await;
    assert_eq!(
        (st, v["format"].as_str(), v["version"].as_u64()),
        (StatusCode::CREATED, Some("raw"), Some(2))
    );

    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("osvdi_image_uploads_total{outcome=\"success\"} 2"),
        "{metrics}"
    );
}

async fn new_uploads_are_new_versions_and_desktops_keep_theirs(s: TestServer) {
    let id = s.template(&s.admin, "Versioned").await;
    let path = format!("/api/v1/templates/{id}");
    assert_eq!(
        s.upload(&s.admin, &id, good_qcow2(s.dir.path())).await.0,
        StatusCode::CREATED
    );

    // A desktop made from version 1 (the compute backend will create these).
    let store = s.core.store();
    let admin = store.user_by_name("admin").await.unwrap().unwrap().user;
    let mut desktop = Desktop::requested(
        admin.id,
        id.parse::<TemplateId>().unwrap(),
        1,
        s.core.now(),
        None,
    );
    desktop.state = DesktopState::Ready;
    store.create_desktop(&desktop).await.unwrap();

    let (st, v) = s.upload(&s.admin, &id, good_qcow2(s.dir.path())).await;
    assert_eq!((st, v["version"].as_u64()), (StatusCode::CREATED, Some(2)));
    let (_, t) = s.get(&path, &s.admin).await;
    assert_eq!(
        t["current_version"], 2,
        "new desktops start from the newest version"
    );
    assert_eq!(
        store.desktop(desktop.id).await.unwrap().template_version,
        1,
        "the desktop keeps its version"
    );
    let (_, versions) = s.get(&format!("{path}/versions"), &s.admin).await;
    let numbers: Vec<_> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);

    let (st, body) = s
        .call(
            Method::DELETE,
            &format!("{path}/versions/1"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "version 1 is in use"
    );
    let (st, body) = s.call(Method::DELETE, &path, Some(&s.admin), None).await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 desktop")
    );
    assert_eq!(
        s.get(&path, &s.admin).await.0,
        StatusCode::OK,
        "still there"
    );
    assert_eq!(s.image_files().len(), 2);

    // Version 2 is unused: it can go, and the next upload is version 3 (numbers are not reused).
    assert_eq!(
        s.call(
            Method::DELETE,
            &format!("{path}/versions/2"),
            Some(&s.admin),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.image_files(), [format!("{id}/1.qcow2")]);
    let (_, v) = s.upload(&s.admin, &id, good_qcow2(s.dir.path())).await;
    assert_eq!(v["version"], 3);

    // A template nobody uses is deleted with its files.
    let other = s.template(&s.admin, "Unused").await;
    s.upload(&s.admin, &other, good_qcow2(s.dir.path())).await;
    assert_eq!(
        s.call(
            Method::DELETE,
            &format!("/api/v1/templates/{other}"),
            Some(&s.admin),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/api/v1/templates/{other}"), &s.admin)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert!(s.image_files().iter().all(|f| !f.starts_with(&other)));
}

async fn a_backing_file_is_refused_and_nothing_kept(s: TestServer) {
    let id = s.template(&s.admin, "Hostile").await;
    // A backing file pointing at a host file the server must never read.
    let (_, bytes) = qemu_img(
        s.dir.path(),
        "evil.qcow2",
        &["-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", "-u"],
        "64M",
    );
    let (st, body) = s.upload(&s.admin, &id, bytes).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("image_rejected")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backing file"),
        "{body}"
    );
    nothing_kept(&s, &id).await;

    let (_, bytes) = qemu_img(
        s.dir.path(),
        "df.qcow2",
        &["-f", "qcow2", "-o", "data_file=/tmp/osvdi-test-data-file"],
        "1M",
    );
    let (st, body) = s.upload(&s.admin, &id, bytes).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    nothing_kept(&s, &id).await;
    let _ = std::fs::remove_file("/tmp/osvdi-test-data-file");

    let (_, audit) = s
        .get("/api/v1/audit?action=template.upload", &s.admin)
        .await;
    assert_eq!(audit[0]["outcome"], "failed");
}

async fn garbage_and_foreign_formats_are_refused(s: TestServer) {
    let id = s.template(&s.admin, "Garbage").await;
    let garbage: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (st, body) = s.upload(&s.admin, &id, garbage).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_image_format")
        )
    );
    let (st, _) = s.upload(&s.admin, &id, vec![]).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "empty body");
    let (_, vmdk) = qemu_img(s.dir.path(), "x.vmdk", &["-f", "vmdk"], "16M");
    let (st, body) = s.upload(&s.admin, &id, vmdk).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("vmdk"),
        "{body}"
    );
    nothing_kept(&s, &id).await;
}

async fn a_truncated_upload_is_refused_and_nothing_kept(s: TestServer) {
    let id = s.template(&s.admin, "Truncated").await;
    let bytes = good_qcow2(s.dir.path());
    // Announce the whole file, send a third, then close: a client that died mid-upload.
    let mut tcp = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "PUT /api/v1/templates/{id}/image HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\n\r\n",
        s.admin,
        bytes.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&bytes[..bytes.len() / 3]).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("upload_incomplete"), "{answer}");
    // The refusal is answered after the clean-up; give the spawned row removal a moment.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    nothing_kept(&s, &id).await;
}

async fn a_checksum_mismatch_is_refused(s: TestServer) {
    let id = s.template(&s.admin, "Checksum").await;
    let bytes = good_qcow2(s.dir.path());
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let res = s
        .http
        .put(s.url(&format!("/api/v1/templates/{id}/image")))
        .bearer_auth(&s.admin)
        .header("content-digest", format!("sha-256=:{wrong}:"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upload_incomplete");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SHA-256")
    );
    nothing_kept(&s, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_images_are_refused() {
    let s = TestServer::start(Db::Sqlite, |c| {
        c.image_limits.max_file_bytes = 250_000;
        c.image_limits.max_virtual_bytes = 32 << 20;
    })
    .await
    .unwrap();
    let id = s.template(&s.admin, "Big").await;
    // File over the limit: refused from Content-Length before the body is read.
    let (_, mut raw) = qemu_img(s.dir.path(), "big.raw", &["-f", "raw"], "1M");
    raw[510] = 0x55;
    raw[511] = 0xAA;
    let (st, body) = s.upload(&s.admin, &id, raw).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    // Small file, virtual disk over the limit.
    let (st, body) = s.upload(&s.admin, &id, good_qcow2(s.dir.path())).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // Within both limits.
    let (_, small) = qemu_img(s.dir.path(), "ok.qcow2", &["-f", "qcow2"], "16M");
    let (st, _) = s.upload(&s.admin, &id, small).await;
    assert_eq!(st, StatusCode::CREATED, "within every limit");
    assert_eq!(
        s.image_files(),
        [format!("{id}/1.qcow2")],
        "only the accepted image is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_larger_than_the_template_disk_is_refused() {
    let s = TestServer::start(Db::Sqlite, |_| {}).await.unwrap();
    let id = s.template(&s.admin, "Small disk").await; // disk_gb = 1
    let (_, bytes) = qemu_img(s.dir.path(), "big.qcow2", &["-f", "qcow2"], "2G");
    let (st, body) = s.upload(&s.admin, &id, bytes).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disk_gb"),
        "{body}"
    );
    nothing_kept(&s, &id).await;
}
