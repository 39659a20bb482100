//! Running `osvdi` as a process and talking to it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

pub fn osvdi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_osvdi"))
}

/// A running `osvdi serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// What it printed on standard output before it started listening.
    pub banner: Vec<String>,
    pub log: PathBuf,
}

impl Server {
    /// Starts `osvdi serve` on a free port with `site` options; logs go to `log`.
    pub fn start(site: &[String], log: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = osvdi();
        cmd.arg("serve")
            .args(site)
            .args(["--listen", "127.0.0.1:0"]);
        cmd.envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = vec![];
        let base = loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                panic!(
                    "osvdi serve exited: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if let Some(addr) = line.trim().strip_prefix("osvdi listening on ") {
                break addr.to_owned();
            }
            banner.push(line.trim().to_owned());
        };
        Server {
            child,
            base,
            banner,
            log: log.to_owned(),
        }
    }

    /// The admin password printed at first start, if it was.
    pub fn first_password(&self) -> Option<String> {
        self.banner.iter().find_map(|l| {
            l.split("password '")
                .nth(1)
                .map(|r| r.split('\'').next().unwrap().to_owned())
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        wait_with_timeout(&mut self.child, Duration::from_secs(20))
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a command with `stdin` as input and returns its output.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn site_args(data: &Path, db_url: Option<&str>) -> Vec<String> {
    let mut v = vec!["--data-dir".to_owned(), data.display().to_string()];
    if let Some(url) = db_url {
        v.extend(["--database-url".to_owned(), url.to_owned()]);
    }
    v
}

pub async fn login(
    http: &reqwest::Client,
    s: &Server,
    user: &str,
    password: &str,
) -> reqwest::Response {
    http.post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

pub async fn token(http: &reqwest::Client, s: &Server, user: &str, password: &str) -> String {
    let res = login(http, s, user, password).await;
    assert_eq!(res.status(), StatusCode::OK, "login {user}");
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

pub fn qcow2(dir: &Path, name: &str, size: &str) -> PathBuf {
    let path = dir.join(name);
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg(size)
        .status()
        .unwrap();
    assert!(st.success());
    path
}

/// The REST API of a running server, as one client.
pub struct Api<'a> {
    pub http: reqwest::Client,
    pub server: &'a Server,
}

impl Api<'_> {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.server.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let st = res.status();
        let text = res.text().await.unwrap();
        (
            st,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> Value {
        self.call(reqwest::Method::GET, path, token, None).await.1
    }

    /// Waits until session `id` is in `state` (panics on another final state or after `secs`).
    pub async fn wait_state(&self, token: &str, id: &str, state: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.get(&format!("/api/v1/sessions/{id}"), token).await;
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
                Instant::now() < deadline,
                "session not {state} after {secs} s: {s}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Launches the catalogue's first template (the demo desktop) and waits until the
    /// desktop is ready; returns its session id.
    pub async fn launch_first_ready(&self, token: &str, secs: u64) -> String {
        let templates = self.get("/api/v1/templates", token).await;
        let (st, d) = self
            .post(
                "/api/v1/sessions",
                token,
                json!({"template_id": templates[0]["id"]}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{d}");
        let id = d["id"].as_str().unwrap().to_owned();
        self.wait_state(token, &id, "ready", secs).await;
        id
    }
}
