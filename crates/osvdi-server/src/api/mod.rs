//! The routes: `/api/v1/...` with their OpenAPI description, plus `/healthz`, `/metrics`.

mod accounts;
mod auth;
mod console;
mod courses;
mod oidc;
mod sessions;
mod spice;
mod stream;
mod system;
mod templates;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::{AppState, metrics};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "osvdi API",
        description = "Accounts, groups, desktop templates and their images, audit log. \
                       Authenticate with `POST /api/v1/auth/login`, then send \
                       `Authorization: Bearer <token>` (or the `osvdi_session` cookie). Errors \
                       are `{\"error\": {\"code\": ..., \"message\": ...}}`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Login sessions"),
        (name = "accounts", description = "Users and groups (admins)"),
        (name = "templates", description = "Desktop templates, images, versions, sharing"),
        (name = "courses", description = "Course reservations and the capacity calendar"),
        (name = "sessions", description = "People's desktops: launch, watch, suspend, resume, end"),
        (name = "system", description = "Audit log")
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("osvdi_session"))),
        );
    }
}

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::me))
        .routes(routes!(oidc::providers))
        .routes(routes!(oidc::logout))
        .routes(routes!(oidc::rules))
        .routes(routes!(oidc::access))
        .routes(routes!(accounts::list_users, accounts::create_user))
        .routes(routes!(accounts::update_user, accounts::delete_user))
        .routes(routes!(accounts::list_groups, accounts::create_group))
        .routes(routes!(accounts::delete_group))
        .routes(routes!(accounts::add_member, accounts::remove_member))
        .routes(routes!(templates::list, templates::create))
        .routes(routes!(
            templates::get,
            templates::update,
            templates::delete
        ))
        .routes(routes!(templates::upload_image))
        .routes(routes!(templates::share))
        .routes(routes!(templates::set_policy))
        .routes(routes!(courses::list, courses::create))
        .routes(routes!(courses::delete))
        .routes(routes!(courses::capacity))
        .routes(routes!(templates::versions))
        .routes(routes!(templates::delete_version))
        .routes(routes!(sessions::list, sessions::launch))
        .routes(routes!(sessions::get, sessions::end))
        .routes(routes!(sessions::suspend))
        .routes(routes!(sessions::resume))
        .routes(routes!(sessions::history))
        .routes(routes!(sessions::events))
        .routes(routes!(spice::vv))
        .routes(routes!(console::open))
        .routes(routes!(console::relay))
        .routes(routes!(stream::stream))
        .routes(routes!(system::audit))
        .routes(routes!(system::gpus))
        .routes(routes!(system::display))
}

/// The OpenAPI document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

pub(crate) fn router(state: AppState) -> Router {
    let (api, doc) = api().split_for_parts();
    let doc = Arc::new(doc);
    Router::new()
        .merge(api)
        .merge(crate::web::routes())
        .merge(oidc::browser_routes())
        .route(
            "/api/v1/openapi.json",
            get(move || async move { axum::Json(doc.as_ref().clone()) }),
        )
        .route("/healthz", get(system::healthz))
        .route("/metrics", get(system::metrics))
        .route_layer(from_fn_with_state(state.clone(), metrics::track))
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), crate::proxy::intercept))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("Page")
}
