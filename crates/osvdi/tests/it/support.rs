//! Running `osvdi` as a process and talking to it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    assert_eq!(res.status(), reqwest::StatusCode::OK, "login {user}");
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
