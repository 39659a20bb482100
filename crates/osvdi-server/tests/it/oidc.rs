//! Single sign-on against a small OpenID provider served by the test itself (discovery, JWKS,
//! authorize, token with PKCE checked, UserInfo, end-session), minting real RS256 ID tokens,
//! so that every ID-token check can be made to fail: audience, expiry, signature, clock skew,
//! replayed state, key rotation. The browser flow against the real `oidc-provider` is in
//! `tests/e2e/oidc.test.js`.

use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreGenderClaim, CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, IssuerUrl, JsonWebKeyId, Nonce, PrivateSigningKey,
    StandardClaims, SubjectIdentifier,
};
use osvdi_core::{CoreConfig, MappingRule, OidcConfig, ProviderConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Db, TestServer};

const CLIENT_ID: &str = "osvdi-test";
const PUBLIC: &str = "http://osvdi.test";

/// How the next ID token is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mint {
    Good,
    WrongAudience,
    Expired,
    /// Signed with a key the provider does not publish, under the published key's id.
    BadSignature,
    IssuedInFuture,
    WrongNonce,
    /// The token endpoint is down (503) after the person logged in.
    Down,
}

struct Idp {
    issuer: String,
    key: (String, String),
    /// Keys published at the JWKS URI (pem, kid).
    published: Vec<(String, String)>,
    mint: Mint,
    claims: Value,
    /// code → (nonce, PKCE challenge)
    codes: Vec<(String, String, String)>,
    jwks_fetches: u32,
}

type Shared = Arc<Mutex<Idp>>;

/// Two RSA keys made once per test binary with `openssl genrsa` (PKCS#1).
fn keys() -> &'static [String; 2] {
    static KEYS: OnceLock<[String; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let one = || {
            let out = std::process::Command::new("openssl")
                .args(["genrsa", "-traditional", "2048"])
                .output()
                .expect("openssl genrsa");
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        };
        [one(), one()]
    })
}

fn signing_key(pem: &str, kid: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.into()))).unwrap()
}

async fn discovery(State(idp): State<Shared>) -> impl IntoResponse {
    let issuer = idp.lock().unwrap().issuer.clone();
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(idp): State<Shared>) -> impl IntoResponse {
    let mut idp = idp.lock().unwrap();
    idp.jwks_fetches += 1;
    let keys: Vec<_> = idp
        .published
        .iter()
        .map(|(pem, kid)| signing_key(pem, kid).as_verification_key())
        .collect();
    axum::Json(json!({ "keys": keys }))
}

async fn authorize(
    State(idp): State<Shared>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Redirect {
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256", "PKCE");
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    let code = format!("code-{}", osvdi_model::UserId::random());
    let mut idp = idp.lock().unwrap();
    idp.codes.push((
        code.clone(),
        q["nonce"].clone(),
        q["code_challenge"].clone(),
    ));
    // The issuer in the answer (RFC 9207), as oidc-provider sends it.
    Redirect::to(&format!(
        "{}?code={code}&state={}&iss={}",
        q["redirect_uri"],
        q["state"],
        idp.issuer.replace(':', "%3A").replace('/', "%2F")
    ))
}

async fn token(State(idp): State<Shared>, body: String) -> axum::response::Response {
    let f: std::collections::HashMap<String, String> =
        openidconnect::url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
    let mut idp = idp.lock().unwrap();
    if idp.mint == Mint::Down {
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    let Some(pos) = idp.codes.iter().position(|c| c.0 == f["code"]) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let (_, nonce, challenge) = idp.codes.remove(pos);
    let verifier = &f["code_verifier"];
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        challenge,
        "PKCE verifier matches"
    );
    let now = chrono::Utc::now();
    let hour = chrono::Duration::hours(1);
    let (mut aud, mut exp, mut iat, mut nonce) = (CLIENT_ID.to_owned(), now + hour, now, nonce);
    let (mut pem, kid) = idp.key.clone();
    match idp.mint {
        Mint::Good => {}
        Mint::WrongAudience => aud = "someone-else".into(),
        Mint::Expired => {
            exp = now - chrono::Duration::minutes(5);
            iat = now - hour;
        }
        Mint::BadSignature => pem = keys()[1].clone(),
        Mint::IssuedInFuture => {
            iat = now + chrono::Duration::minutes(10);
            exp = iat + hour;
        }
        Mint::WrongNonce => nonce = "not-the-nonce".into(),
        Mint::Down => unreachable!("answered above"),
    }
    let sub = idp.claims["sub"].as_str().unwrap().to_owned();
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(idp.issuer.clone()).unwrap(),
        vec![Audience::new(aud)],
        exp,
        iat,
        StandardClaims::<CoreGenderClaim>::new(SubjectIdentifier::new(sub.clone())),
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(nonce)));
    let id_token = CoreIdToken::new(
        claims,
        &signing_key(&pem, &kid),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    )
    .unwrap();
    axum::Json(json!({
        "access_token": format!("at-{sub}"),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token.to_string(),
    }))
    .into_response()
}

async fn userinfo(State(idp): State<Shared>) -> impl IntoResponse {
    axum::Json(idp.lock().unwrap().claims.clone())
}

/// Starts the provider on a loopback port.
async fn start_idp() -> Shared {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let key = (keys()[0].clone(), "k1".to_owned());
    let idp = Arc::new(Mutex::new(Idp {
        issuer,
        published: vec![key.clone()],
        key,
        mint: Mint::Good,
        claims: json!({"sub": "s-123", "preferred_username": "Alice", "name": "Alice Liddell",
                       "email": "alice@uni.example", "groups": ["/imaging"],
                       "eduperson_entitlement": ["urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu"],
                       "realm_access": {"roles": ["vdi-steward"]}}),
        codes: vec![],
        jwks_fetches: 0,
    }));
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    idp
}

fn rule(claim: &str, value: Option<&str>, prefix: Option<&str>) -> MappingRule {
    MappingRule {
        provider: None,
        claim: claim.into(),
        value: value.map(Into::into),
        value_prefix: prefix.map(Into::into),
        group: None,
        role: None,
    }
}

fn provider(issuer: &str) -> ProviderConfig {
    serde_json::from_value(json!({
        "display_name": "Test University", "issuer": issuer,
        "client_id": CLIENT_ID, "client_secret": "test-secret",
        "required_claims": ["email"],
    }))
    .unwrap()
}

fn configure(c: &mut CoreConfig, issuer: &str) {
    let mut providers = std::collections::BTreeMap::new();
    providers.insert("uni".to_owned(), provider(issuer));
    // A provider that does not run: its port is closed.
    providers.insert("down".to_owned(), provider("http://127.0.0.1:9"));
    // The same provider, with sessions that end with its token.
    let mut short = provider(issuer);
    short.limit_session_to_token = true;
    providers.insert("short".to_owned(), short);
    c.oidc = OidcConfig {
        public_url: Some(PUBLIC.into()),
        clock_skew_secs: Some(60),
        providers,
        rules: vec![
            MappingRule {
                group: Some("imaging".into()),
                ..rule("groups", Some("/imaging"), None)
            },
            MappingRule {
                group: Some("vo-example".into()),
                ..rule(
                    "eduperson_entitlement",
                    None,
                    Some("urn:mace:egi.eu:group:vo.example.org:"),
                )
            },
            MappingRule {
                role: Some(osvdi_model::Role::Steward),
                ..rule("realm_access.roles", Some("vdi-steward"), None)
            },
        ],
    };
}

/// A browser: keeps the binding cookie between the login start and the callback.
struct Browser {
    http: reqwest::Client,
    binding: Option<String>,
}

fn cookie_of(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

impl Browser {
    fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            binding: None,
        }
    }

    /// Starts a login; returns the callback path the provider sends the browser to.
    async fn start(&mut self, s: &TestServer, provider: &str) -> reqwest::Response {
        let mut req = self.http.get(s.url(&format!(
            "/auth/oidc/{provider}/login?return_to=/%23/desktops"
        )));
        if let Some(b) = &self.binding {
            req = req.header("cookie", format!("osvdi_oidc={b}"));
        }
        let res = req.send().await.unwrap();
        if let Some(b) = cookie_of(&res, "osvdi_oidc") {
            self.binding = Some(b);
        }
        res
    }

    /// Goes to the provider (which logs in at once) and returns the callback path.
    async fn via_provider(&mut self, s: &TestServer) -> String {
        self.via(s, "uni").await
    }

    async fn via(&mut self, s: &TestServer, provider: &str) -> String {
        let res = self.start(s, provider).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let at_idp = res.headers()["location"].to_str().unwrap().to_owned();
        let res = self.http.get(&at_idp).send().await.unwrap();
        let back = res.headers()["location"].to_str().unwrap().to_owned();
        back.strip_prefix(PUBLIC)
            .expect("redirect URI from public_url")
            .to_owned()
    }

    async fn callback(&self, s: &TestServer, path: &str) -> reqwest::Response {
        let mut req = self.http.get(s.url(path));
        if let Some(b) = &self.binding {
            req = req.header("cookie", format!("osvdi_oidc={b}"));
        }
        req.send().await.unwrap()
    }

    /// A whole login: returns the session token.
    async fn login(&mut self, s: &TestServer) -> String {
        let path = self.via_provider(s).await;
        let res = self.callback(s, &path).await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "{}",
            res.text().await.unwrap()
        );
        assert_eq!(res.headers()["location"], "/#/desktops");
        cookie_of(&res, "osvdi_session").expect("session cookie")
    }
}

/// The error page's code, after checking that it is a page and not a trace.
async fn page_code(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "an HTML page"
    );
    let text = res.text().await.unwrap();
    assert!(text.contains("<h1>") && text.contains("/static/style.css"));
    let code = text
        .split("data-code=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

async fn server(db: Db) -> Option<(TestServer, Shared)> {
    let idp = start_idp().await;
    let issuer = idp.lock().unwrap().issuer.clone();
    let s = TestServer::start(db, |c| configure(c, &issuer)).await?;
    Some((s, idp))
}

async fn groups_of(s: &TestServer, token: &str) -> (String, String, Vec<String>) {
    let (st, me) = s.get("/api/v1/me", token).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    let groups = me["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_owned())
        .collect();
    (
        me["name"].as_str().unwrap().to_owned(),
        me["role"].as_str().unwrap().to_owned(),
        groups,
    )
}

async fn jit_accounts_and_mapping_follow_the_provider(db: Db) {
    let Some((s, idp)) = server(db).await else {
        return;
    };
    // The portal's login page lists the providers.
    let (_, list) = s
        .call(Method::GET, "/api/v1/auth/providers", None, None)
        .await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["down", "short", "uni"]);
    assert_eq!(list[2]["display_name"], "Test University");
    assert_eq!(list[2]["login_url"], "/auth/oidc/uni/login");

    // A local account named like the person stays someone else: never matched by name.
    s.user("alice", "user").await;
    let mut b = Browser::new();
    let token = b.login(&s).await;
    let (name, role, groups) = groups_of(&s, &token).await;
    assert_eq!(name, "alice-2", "a fresh account, not the local alice");
    assert_eq!(role, "steward");
    assert_eq!(groups, ["imaging", "vo-example"]);

    // An admin adds a group by hand; the provider drops imaging and the steward role.
    s.post("/api/v1/groups", &s.admin, json!({"name": "by-hand"}))
        .await;
    s.call(
        Method::PUT,
        "/api/v1/groups/by-hand/members/alice-2",
        Some(&s.admin),
        None,
    )
    .await;
    // A template shared with imaging: the admin asks why alice-2 may use it.
    let steward = s.user("sam", "steward").await;
    let tid = s.template(&steward, "Imaging desktop").await;
    s.call(
        Method::PUT,
        &format!("/api/v1/templates/{tid}/sharing"),
        Some(&steward),
        Some(json!({"visibility": "groups", "groups": ["imaging", "by-hand"]})),
    )
    .await;
    let (st, why) = s
        .get(
            &format!("/api/v1/admin/access?user=alice-2&template={tid}"),
            &s.admin,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{why}");
    let text = why["steps"].to_string();
    assert!(
        text.contains(
            "group imaging: granted at the last login by rule 1: groups = \\\"/imaging\\\""
        ),
        "{text}"
    );
    assert!(text.contains("group by-hand: set by hand"), "{text}");
    assert!(text.contains("issuer http://127.0.0.1"), "{text}");
    assert_eq!(
        s.get(
            &format!("/api/v1/admin/access?user=alice-2&template={tid}"),
            &token
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (_, rules) = s.get("/api/v1/admin/oidc/rules", &s.admin).await;
    assert_eq!(rules.as_array().unwrap().len(), 3);
    assert_eq!(rules[2]["role"], "steward");

    idp.lock().unwrap().claims = json!({"sub": "s-123", "preferred_username": "alice",
        "name": "Alice L.", "email": "alice@new.example", "groups": ["/staff"],
        "eduperson_entitlement": ["urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu"]});
    let token2 = b.login(&s).await;
    let (name, role, groups) = groups_of(&s, &token2).await;
    assert_eq!(
        name, "alice-2",
        "the same account: (issuer, subject) is the key"
    );
    assert_eq!(role, "user", "the mapped role went with the claim");
    assert_eq!(
        groups,
        ["by-hand", "vo-example"],
        "imaging removed, by-hand kept"
    );
    let ids = s
        .core
        .store()
        .identities_of(
            s.core
                .store()
                .user_by_name("alice-2")
                .await
                .unwrap()
                .unwrap()
                .user
                .id,
        )
        .await
        .unwrap();
    assert_eq!(ids[0].email.as_deref(), Some("alice@new.example"));
    assert_eq!(ids[0].display_name.as_deref(), Some("Alice L."));

    // Logout ends the session here and answers the provider's end-session URL.
    let res = b
        .http
        .post(s.url("/api/v1/auth/oidc/logout"))
        .bearer_auth(&token2)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let redirect = body["redirect"].as_str().unwrap();
    assert!(redirect.contains("/logout?id_token_hint="), "{redirect}");
    assert!(redirect.contains("post_logout_redirect_uri=http%3A%2F%2Fosvdi.test%2F"));
    assert_eq!(
        s.get("/api/v1/me", &token2).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A local account's logout has nothing to continue at.
    let (st, body) = s
        .post("/api/v1/auth/oidc/logout", &steward, json!({}))
        .await;
    assert_eq!(
        (st, body["redirect"].clone()),
        (StatusCode::OK, Value::Null)
    );

    // The audit log tells who came and what the rules changed.
    let (_, audit) = s.get("/api/v1/audit?limit=200", &s.admin).await;
    let audit = audit.to_string();
    assert!(audit.contains("first login through uni"));
    assert!(audit.contains("no rule grants it any more"));
}

async fn bad_tokens_and_states_are_refused(db: Db) {
    let Some((s, idp)) = server(db).await else {
        return;
    };
    let cases = [
        (Mint::WrongAudience, StatusCode::FORBIDDEN, "token_rejected"),
        (Mint::Expired, StatusCode::FORBIDDEN, "token_expired"),
        (Mint::BadSignature, StatusCode::FORBIDDEN, "token_rejected"),
        (Mint::IssuedInFuture, StatusCode::FORBIDDEN, "clock_skew"),
        (Mint::WrongNonce, StatusCode::FORBIDDEN, "token_rejected"),
        (Mint::Down, StatusCode::BAD_GATEWAY, "provider_unreachable"),
    ];
    for (mint, status, code) in cases {
        idp.lock().unwrap().mint = mint;
        let mut b = Browser::new();
        let path = b.via_provider(&s).await;
        let res = b.callback(&s, &path).await;
        assert!(cookie_of(&res, "osvdi_session").is_none(), "{mint:?}");
        assert_eq!(page_code(res).await, (status, code.to_owned()), "{mint:?}");
    }
    idp.lock().unwrap().mint = Mint::Good;

    // Replayed state: the first use logs in, the second is refused.
    let mut b = Browser::new();
    let path = b.via_provider(&s).await;
    assert_eq!(b.callback(&s, &path).await.status(), StatusCode::SEE_OTHER);
    let (st, code) = page_code(b.callback(&s, &path).await).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::BAD_REQUEST, "unknown_state")
    );
    // A callback from another browser (no binding cookie) is refused, and spends the state.
    let path = b.via_provider(&s).await;
    let (_, code) = page_code(Browser::new().callback(&s, &path).await).await;
    assert_eq!(code, "unknown_state");
    assert_eq!(
        page_code(b.callback(&s, &path).await).await.1,
        "unknown_state"
    );
    // An answer that names another issuer (mix-up).
    let path = b.via_provider(&s).await;
    let forged = format!(
        "{}&iss=https%3A%2F%2Fevil.example",
        path.split("&iss=").next().unwrap()
    );
    let (_, code) = page_code(b.callback(&s, &forged).await).await;
    assert_eq!(code, "token_rejected");
    // A made-up state.
    let (_, code) = page_code(
        b.callback(&s, "/auth/oidc/uni/callback?code=x&state=made-up")
            .await,
    )
    .await;
    assert_eq!(code, "unknown_state");

    // Consent refused at the provider.
    let res = b.start(&s, "uni").await;
    let at_idp = reqwest::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let state = at_idp
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let res = b
        .callback(
            &s,
            &format!(
                "/auth/oidc/uni/callback?error=access_denied&error_description=nope&state={state}"
            ),
        )
        .await;
    assert_eq!(
        page_code(res).await,
        (StatusCode::FORBIDDEN, "access_denied".to_owned())
    );

    // A claim the provider requires is missing.
    idp.lock().unwrap().claims = json!({"sub": "s-9", "preferred_username": "noemail"});
    let path = b.via_provider(&s).await;
    assert_eq!(
        page_code(b.callback(&s, &path).await).await.1,
        "missing_claim"
    );
    assert!(
        s.core
            .store()
            .user_by_name("noemail")
            .await
            .unwrap()
            .is_none()
    );

    // The provider is down.
    let res = Browser::new().start(&s, "down").await;
    assert_eq!(
        page_code(res).await,
        (StatusCode::BAD_GATEWAY, "provider_unreachable".to_owned())
    );
    // An unknown provider.
    let res = Browser::new().start(&s, "nope").await;
    assert_eq!(page_code(res).await.1, "unknown_provider");

    // Every failure is in the audit log.
    let (_, audit) = s
        .get("/api/v1/audit?action=login&limit=200", &s.admin)
        .await;
    let failures: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object"].as_str().unwrap().starts_with("oidc:"))
        .collect();
    assert_eq!(failures.len(), 15, "{failures:#?}");
    assert!(
        failures
            .iter()
            .any(|e| e["detail"].as_str().unwrap().starts_with("clock_skew"))
    );
    assert!(failures.iter().any(|e| {
        e["detail"]
            .as_str()
            .unwrap()
            .starts_with("provider_unreachable")
    }));
}

async fn signing_keys_rotate(db: Db) {
    let Some((s, idp)) = server(db).await else {
        return;
    };
    let mut b = Browser::new();
    b.login(&s).await;
    let fetched = idp.lock().unwrap().jwks_fetches;
    // The provider rotates to a new key that osvdi has not seen: it refetches the keys once.
    {
        let mut i = idp.lock().unwrap();
        i.key = (keys()[1].clone(), "k2".into());
        i.published = vec![i.key.clone()];
    }
    // Keys are refetched at most every 10 s.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    b.login(&s).await;
    assert_eq!(idp.lock().unwrap().jwks_fetches, fetched + 1);
}

macro_rules! both_dbs {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::support::Db::Sqlite).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::support::Db::Postgres).await; })*
        }
    };
}

async fn sessions_can_end_with_the_provider_token(db: Db) {
    let Some((s, _idp)) = server(db).await else {
        return;
    };
    let max_age = |res: &reqwest::Response| -> u64 {
        let c = res
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("osvdi_session="))
            .unwrap();
        c.split("Max-Age=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut b = Browser::new();
    let path = b.via(&s, "short").await;
    let res = b.callback(&s, &path).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        max_age(&res) <= 300,
        "the provider's access token lives 300 s"
    );
    let path = b.via(&s, "uni").await;
    let res = b.callback(&s, &path).await;
    assert!(
        max_age(&res) > 11 * 3600,
        "the site's session lifetime (12 h)"
    );
}

both_dbs!(
    sessions_can_end_with_the_provider_token,
    jit_accounts_and_mapping_follow_the_provider,
    bad_tokens_and_states_are_refused,
    signing_keys_rotate,
);
