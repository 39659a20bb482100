//! No password, token or password hash reaches the logs, at any level, in text or JSON.

use reqwest::header;
use serde_json::json;
use tempfile::TempDir;

use crate::support::*;

async fn exercise_and_check(json_logs: bool) {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let site = site_args(&data, None);
    let http = reqwest::Client::new();
    let log = dir.path().join("serve.log");
    let mut env = vec![("RUST_LOG", "trace")];
    if json_logs {
        env.push(("OSVDI_LOG_JSON", "true"));
    }
    let server = Server::start(&site, &log, &env);
    let admin_pw = server.first_password().unwrap();

    let wrong_pw = "Wrong-Secret-4711";
    assert_eq!(login(&http, &server, "admin", wrong_pw).await.status(), 401);
    let res = login(&http, &server, "admin", &admin_pw).await;
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    http.get(server.url("/api/v1/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    http.get(server.url("/api/v1/templates"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let new_pw = "New-Secret-0815-x";
    let user_pw = "User-Secret-1234-y";
    http.post(server.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(&json!({"name": "dora", "password": user_pw}))
        .send()
        .await
        .unwrap();
    let res = http
        .post(server.url("/api/v1/auth/password"))
        .bearer_auth(&token)
        .json(&json!({"current_password": admin_pw, "new_password": new_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    http.post(server.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    // The admin command line at trace level too.
    let cli_pw = "Cli-Secret-9999-z";
    let mut cmd = osvdi();
    cmd.env("RUST_LOG", "trace").arg("admin").args(&site).args([
        "user",
        "create",
        "carl",
        "--password-stdin",
    ]);
    let out = run_with_stdin(cmd, &format!("{cli_pw}\n"));
    assert!(out.status.success());
    let cli_log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);

    assert!(server.terminate().success());
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.lines().count() > 20, "trace logging was on");
    assert!(
        logs.contains("/api/v1/auth/login"),
        "requests are logged (by route)"
    );
    let token_value = token.trim_start_matches("osvdi_");
    for (what, secret) in [
        ("admin password", admin_pw.as_str()),
        ("wrong password", wrong_pw),
        ("new password", new_pw),
        ("user password", user_pw),
        ("token", token_value),
        ("cli password", cli_pw),
        ("password hash", "$argon2id$"),
    ] {
        assert!(
            !logs.contains(secret),
            "the {what} appears in the server log"
        );
        assert!(
            !cli_log.contains(secret),
            "the {what} appears in the admin command's output"
        );
    }
}

#[tokio::test]
async fn no_secret_in_text_logs_at_trace_level() {
    exercise_and_check(false).await;
}

#[tokio::test]
async fn no_secret_in_json_logs_at_trace_level() {
    exercise_and_check(true).await;
}

/// Console tokens travel in a query string (`/ws/console?token=...`): they reach no log, even
/// at trace level, whether the token is good, used again or made up.
#[tokio::test]
async fn no_console_token_in_the_logs() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let dir = TempDir::with_prefix_in("osvdi-e2e-", "/tmp").unwrap();
    let data = dir.path().join("data");
    let site = site_args(&data, None);
    let out = osvdi()
        .env("RUST_LOG", "warn")
        .args(["template", "demo"])
        .args(&site)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = stdout
        .split("password '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let log = dir.path().join("serve.log");
    let server = Server::start(&site, &log, &[("RUST_LOG", "trace")]);
    let http = reqwest::Client::new();
    let login = token(&http, &server, "admin", password).await;
    let api = Api {
        http: http.clone(),
        server: &server,
    };
    let id = api.launch_first_ready(&login, 120).await;
    let grant: serde_json::Value = http
        .post(server.url(&format!("/api/v1/sessions/{id}/console")))
        .bearer_auth(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token_value = grant["token"].as_str().unwrap().to_owned();
    let url = grant["url"].as_str().unwrap().to_owned();
    let open = |url: String| {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {login}").parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    let (mut ws, _) = open(url.clone()).await.expect("the console opens");
    let greeting = ws.next().await.unwrap().unwrap();
    assert_eq!(greeting.into_data().as_ref(), b"RFB 003.008\n");
    drop(ws);
    assert!(open(url.clone()).await.is_err(), "used again");
    let made_up = url.replace(
        &token_value,
        "MadeUpToken-0123456789abcdefghijklmnopqrstuvw",
    );
    assert!(open(made_up).await.is_err(), "made up");

    let pid = std::fs::read_to_string(data.join("desktops").join(&id).join("qemu.pid"));
    assert!(server.terminate().success());
    if let Ok(pid) = pid {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status();
    }
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("/ws/console"),
        "the relay's requests are logged by route"
    );
    for secret in [token_value.as_str(), "MadeUpToken"] {
        assert!(
            !logs.contains(secret),
            "a console token appears in the server log"
        );
    }
}
