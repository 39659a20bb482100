//! The test server: a real `osvdi_server::serve` on 127.0.0.1:0 over a temp data dir and a
//! fresh database, with an admin account, and small HTTP helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use osvdi_compute::qemu::{Accel, QemuBackend, QemuConfig};
use osvdi_core::{Caller, Core, CoreConfig, ShiftedClock};
use osvdi_model::Role;
use osvdi_server::{AppState, DisplaySettings, HttpConfig};
use osvdi_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

std::thread_local! {
    /// An mdev inventory for the next server this test thread starts.
    static MDEV: std::cell::RefCell<Option<osvdi_compute::mdev::MdevInventory>> = const { std::cell::RefCell::new(None) };
}

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

/// Like `db_tests!`, for cases that need desktops.
#[macro_export]
macro_rules! db_tests_with_desktops {
    ($($name:ident),* $(,)?) => {
        mod sqlite_desktops {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let s = $crate::support::TestServer::with_desktops($crate::support::Db::Sqlite, |_| {}).await.unwrap();
                super::$name(s).await;
            })*
        }
        mod postgres_desktops {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(s) = $crate::support::TestServer::with_desktops($crate::support::Db::Postgres, |_| {}).await else {
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
    /// Moves the core's time (time limits) without waiting.
    pub clock: Arc<ShiftedClock>,
    /// The QEMU backend's folder, when the server runs desktops.
    pub run_dir: Option<PathBuf>,
    shutdown: CancellationToken,
}

impl Drop for TestServer {
    /// Stops the server and kills the test's QEMU processes (they outlive the server by design).
    fn drop(&mut self) {
        self.shutdown.cancel();
        let Some(run_dir) = &self.run_dir else { return };
        for entry in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
            if let Ok(pid) = std::fs::read_to_string(entry.path().join("qemu.pid")) {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
    }
}

impl TestServer {
    /// Starts a server; `tune` may change the core's settings first.
    pub async fn start(db: Db, tune: impl FnOnce(&mut CoreConfig)) -> Option<TestServer> {
        Self::start_inner(db, tune, false, HttpConfig::default()).await
    }

    /// Starts a server with its own HTTP settings (trusted proxies, say).
    pub async fn start_with_http(
        db: Db,
        tune: impl FnOnce(&mut CoreConfig),
        http: HttpConfig,
    ) -> Option<TestServer> {
        Self::start_inner(db, tune, false, http).await
    }

    /// Starts a server that runs desktops on a real QEMU backend (TCG) with its reconciler.
    pub async fn with_desktops(db: Db, tune: impl FnOnce(&mut CoreConfig)) -> Option<TestServer> {
        Self::start_inner(db, tune, true, HttpConfig::default()).await
    }

    /// Like `with_desktops`, with the mdev inventory of a fixture tree whose kernel reactions
    /// are simulated.
    pub async fn with_desktops_and_gpus(sysfs: &Path) -> TestServer {
        let inventory = osvdi_compute::mdev::MdevInventory::new(sysfs)
            .with_write_hook(osvdi_compute::mdev::fake::FakeKernel::new(sysfs).hook());
        MDEV.with(|m| *m.borrow_mut() = Some(inventory));
        Self::start_inner(Db::Sqlite, |_| {}, true, HttpConfig::default())
            .await
            .unwrap()
    }

    async fn start_inner(
        db: Db,
        tune: impl FnOnce(&mut CoreConfig),
        desktops: bool,
        http_config: HttpConfig,
    ) -> Option<TestServer> {
        let dir = TempDir::new().unwrap();
        let url = match db {
            Db::Sqlite => Store::sqlite_url(&dir.path().join("osvdi.db")),
            Db::Postgres => osvdi_store::testing::fresh_postgres_database().await?,
        };
        let store = Store::open(&url).await.expect("open store");
        let mut config = CoreConfig::new(dir.path().to_path_buf());
        tune(&mut config);
        let clock = Arc::new(ShiftedClock::default());
        let mut core = Core::new(store, config, clock.clone()).unwrap();
        if let Some(inventory) = MDEV.with(|m| m.borrow_mut().take()) {
            core = core.with_mdev(inventory);
        }
        let shutdown = CancellationToken::new();
        let mut run_dir = None;
        if desktops {
            let dir = dir.path().join("desktops");
            let mut qemu = QemuConfig::new(&dir);
            qemu.accel = Accel::Tcg;
            let backend = Arc::new(QemuBackend::new(qemu).await.expect("QEMU backend"));
            core = core.with_compute(backend);
            run_dir = Some(dir);
        }
        let core = Arc::new(core);
        core.recover().await.unwrap();
        if desktops {
            tokio::spawn(
                core.clone()
                    .run_reconciler(std::time::Duration::from_millis(300), shutdown.clone()),
            );
        }
        core.create_user(&Caller::operator("test"), "admin", Role::Admin, ADMIN_PW)
            .await
            .unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // The real probe of the video encoders, as `osvdi serve` does it.
        let display = DisplaySettings {
            encoder: osvdi_display::EncoderKind::Openh264,
            probes: osvdi_display::probe_encoders(),
        };
        let state = AppState::new(core.clone(), http_config).with_display(display);
        tokio::spawn(osvdi_server::serve(listener, state, shutdown.clone()));
        let http = reqwest::Client::new();
        let mut s = TestServer {
            base,
            http,
            core,
            dir,
            admin: String::new(),
            clock,
            run_dir,
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

/// The demo guest image, built once per test run.
pub fn demo_image() -> &'static Path {
    static IMAGE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("osvdi-test-demo-{}.qcow2", std::process::id()));
        osvdi_demo::build(&path, &osvdi_demo::DemoOptions::default())
            .expect("build the demo guest");
        path
    })
}

impl TestServer {
    /// Registers the demo guest as a template shared with everyone; `extra` adds fields.
    pub async fn demo_template(&self, name: &str, extra: Value) -> String {
        let mut body = json!({"name": name, "vcpus": 1, "memory_mb": 256, "disk_gb": 1,
                              "ready": "marker:OSVDI-READY", "visibility": "everyone"});
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let (st, t) = self.post("/api/v1/templates", &self.admin, body).await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        let id = t["id"].as_str().unwrap().to_owned();
        let (st, v) = self
            .upload(&self.admin, &id, std::fs::read(demo_image()).unwrap())
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        id
    }

    /// Waits until session `id` (seen by `token`) is in `state`; panics after `secs`, or if it
    /// reaches a different final state.
    pub async fn wait_state(&self, token: &str, id: &str, state: &str, secs: u64) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let (_, s) = self.get(&format!("/api/v1/sessions/{id}"), token).await;
            if s["state"] == state {
                return s;
            }
            let terminal = s["state"] == "failed" || s["state"] == "ended";
            assert!(
                !terminal,
                "session reached {} instead of {state}: {s}",
                s["state"]
            );
            assert!(
                std::time::Instant::now() < deadline,
                "session not {state} after {secs} s: {s}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The folder the QEMU backend keeps for a desktop.
    pub fn desktop_dir(&self, id: &str) -> PathBuf {
        self.run_dir
            .as_ref()
            .expect("a server with desktops")
            .join(id)
    }
}

/// A shell on a desktop's serial port.
pub struct Serial(tokio::net::UnixStream);

impl Serial {
    pub async fn open(dir: &Path) -> Serial {
        Serial(
            tokio::net::UnixStream::connect(dir.join("serial.sock"))
                .await
                .expect("serial socket"),
        )
    }

    /// Runs `command` and returns once a line equal to `expect` comes back.
    pub async fn run(&mut self, command: &str, expect: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.0
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                let n = self.0.read(&mut buf).await.unwrap();
                assert!(n > 0, "serial closed; seen: {seen}");
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                if seen.lines().any(|l| l.trim_end_matches('\r') == expect) {
                    return;
                }
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "no line '{expect}' after '{command}'; seen: {seen:?}"
        );
    }
}
