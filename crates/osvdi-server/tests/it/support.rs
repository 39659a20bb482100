//! The test server: a real `osvdi_server::serve` on 127.0.0.1:0 over a temp data dir and a
//! fresh database, with an admin account, and small HTTP helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use osvdi_core::{Caller, Core, CoreConfig, SystemClock};
use osvdi_model::Role;
use osvdi_server::{AppState, HttpConfig};
use osvdi_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub const ADMIN_PW: &str = "admin-password-1";
pub const USER_PW: &str = "user-password-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs each listed case once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let s = $crate::support::TestServer::start($crate::support::Db::Sqlite, |_| {}).await.unwrap();
                super::$name(s).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(s) = $crate::support::TestServer::start($crate::support::Db::Postgres, |_| {}).await else {
                    return;
                };
                super::$name(s).await;
            })*
        }
    };
}

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub core: Arc<Core>,
    pub dir: TempDir,
    pub admin: String,
    shutdown: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestServer {
    /// Starts a server; `tune` may change the core's settings first.
    pub async fn start(db: Db, tune: impl FnOnce(&mut CoreConfig)) -> Option<TestServer> {
        let dir = TempDir::new().unwrap();
        let url = match db {
            Db::Sqlite => Store::sqlite_url(&dir.path().join("osvdi.db")),
            Db::Postgres => osvdi_store::testing::fresh_postgres_database().await?,
        };
        let store = Store::open(&url).await.expect("open store");
        let mut config = CoreConfig::new(dir.path().to_path_buf());
        tune(&mut config);
        let core = Arc::new(Core::new(store, config, Arc::new(SystemClock)).unwrap());
        core.recover().await.unwrap();
        core.create_user(&Caller::operator("test"), "admin", Role::Admin, ADMIN_PW)
            .await
            .unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let state = AppState::new(core.clone(), HttpConfig::default());
        tokio::spawn(osvdi_server::serve(listener, state, shutdown.clone()));
        let http = reqwest::Client::new();
        let mut s = TestServer {
            base,
            http,
            core,
            dir,
            admin: String::new(),
            shutdown,
        };
        s.admin = s.login("admin", ADMIN_PW).await;
        Some(s)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in and returns the bearer token; panics unless it works.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": user, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {user}: {body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// One JSON request; returns the status and the body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            },
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Creates an account with `role` and returns its token.
    pub async fn user(&self, name: &str, role: &str) -> String {
        let (st, body) = self
            .post(
                "/api/v1/users",
                &self.admin,
                json!({"name": name, "role": role, "password": USER_PW}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        self.login(name, USER_PW).await
    }

    /// Creates a template as `token`'s user and returns its id.
    pub async fn template(&self, token: &str, name: &str) -> String {
        let body =
            json!({"name": name, "vcpus": 2, "memory_mb": 2048, "disk_gb": 1, "os": "debian-12"});
        let (st, body) = self.post("/api/v1/templates", token, body).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Uploads `bytes` as the image of template `id`.
    pub async fn upload(&self, token: &str, id: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let res = self
            .http
            .put(self.url(&format!("/api/v1/templates/{id}/image")))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Files under the data dir's image folder, relative, sorted.
    pub fn image_files(&self) -> Vec<String> {
        let root = self.dir.path().join("images");
        let mut out = vec![];
        walk(&root, &root, &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

/// A real image made by `qemu-img create ARGS PATH SIZE` in `dir`; returns its path and bytes.
pub fn qemu_img(dir: &Path, name: &str, args: &[&str], size: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let out = Command::new("qemu-img")
        .arg("create")
        .arg("-q")
        .args(args)
        .arg(&path)
        .arg(size)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qemu-img: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// A standalone 64 MiB qcow2, as `qemu-img create` makes it.
pub fn good_qcow2(dir: &Path) -> Vec<u8> {
    qemu_img(dir, "good.qcow2", &["-f", "qcow2"], "64M").1
}
