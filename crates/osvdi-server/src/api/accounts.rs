//! Users and groups (admins only; the core checks).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use osvdi_model::Role;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Authed};
use crate::wire::{CreateGroup, CreateUser, GroupDto, UpdateUser, UserDto, parse, rfc3339};

/// Lists all accounts.
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<UserDto>), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_users(
    State(s): State<AppState>,
    auth: Authed,
) -> Result<Json<Vec<UserDto>>, ApiError> {
    let users = s.core.list_users(&auth.caller).await?;
    Ok(Json(users.iter().map(UserDto::from).collect()))
}

/// Creates an account.
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = CreateUser,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = UserDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create_user(
    State(s): State<AppState>,
    auth: Authed,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserDto>), ApiError> {
    let role: Role = parse(&req.role)?;
    let user = s
        .core
        .create_user(&auth.caller, &req.name, role, &req.password)
        .await?;
    Ok((StatusCode::CREATED, Json(UserDto::from(&user))))
}

/// Changes an account's role and/or password.
#[utoipa::path(patch, path = "/api/v1/users/{name}", tag = "accounts", request_body = UpdateUser,
    params(("name" = String, Path, description = "User name")), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = UserDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn update_user(
    State(s): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> Result<Json<UserDto>, ApiError> {
    let mut user = s.core.user_by_name(&auth.caller, &name).await?;
    if let Some(role) = req.role {
        user = s
            .core
            .set_role(&auth.caller, user.id, parse(&role)?)
            .await?;
    }
    if let Some(pw) = req.password {
        s.core.reset_password(&auth.caller, user.id, &pw).await?;
    }
    Ok(Json(UserDto::from(&user)))
}

/// Deletes an account (refused while it owns templates).
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "accounts",
    params(("name" = String, Path, description = "User name")), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn delete_user(
    State(s): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = s.core.user_by_name(&auth.caller, &name).await?;
    s.core.delete_user(&auth.caller, user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists groups with their members (admins: all; others: their own).
#[utoipa::path(get, path = "/api/v1/groups", tag = "accounts", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<GroupDto>)))]
pub(crate) async fn list_groups(
    State(s): State<AppState>,
    auth: Authed,
) -> Result<Json<Vec<GroupDto>>, ApiError> {
    let groups = s.core.list_groups(&auth.caller).await?;
    Ok(Json(
        groups
            .into_iter()
            .map(|g| GroupDto {
                id: g.group.id.to_string(),
                name: g.group.name,
                members: g.members,
                created_at: rfc3339(g.group.created_at),
            })
            .collect(),
    ))
}

/// Creates a group.
#[utoipa::path(post, path = "/api/v1/groups", tag = "accounts", request_body = CreateGroup,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = GroupDto), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create_group(
    State(s): State<AppState>,
    auth: Authed,
    ApiJson(req): ApiJson<CreateGroup>,
) -> Result<(StatusCode, Json<GroupDto>), ApiError> {
    let g = s.core.create_group(&auth.caller, &req.name).await?;
    let dto = GroupDto {
        id: g.id.to_string(),
        name: g.name,
        members: vec![],
        created_at: rfc3339(g.created_at),
    };
    Ok((StatusCode::CREATED, Json(dto)))
}

/// Deletes a group (templates shared with it are no longer shared with it).
#[utoipa::path(delete, path = "/api/v1/groups/{name}", tag = "accounts",
    params(("name" = String, Path, description = "Group name")), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_group(
    State(s): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.delete_group(&auth.caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a user to a group (idempotent).
#[utoipa::path(put, path = "/api/v1/groups/{name}/members/{user}", tag = "accounts",
    params(("name" = String, Path, description = "Group name"), ("user" = String, Path, description = "User name")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn add_member(
    State(s): State<AppState>,
    auth: Authed,
    Path((name, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.core.add_member(&auth.caller, &name, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a user from a group.
#[utoipa::path(delete, path = "/api/v1/groups/{name}/members/{user}", tag = "accounts",
    params(("name" = String, Path, description = "Group name"), ("user" = String, Path, description = "User name")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn remove_member(
    State(s): State<AppState>,
    auth: Authed,
    Path((name, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if s.core.remove_member(&auth.caller, &name, &user).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Membership"))
    }
}
