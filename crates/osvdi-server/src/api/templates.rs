//! Templates, their images, versions and sharing.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use osvdi_core::{NewTemplate, Sharing, UploadExpectation};
use osvdi_model::{Template, TemplateId};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Authed};
use crate::wire::{
    CreateTemplate, PolicyDto, SharingDto, TemplateDto, UpdateTemplate, VersionDto, parse,
};

fn template_id(s: &str) -> Result<TemplateId, ApiError> {
    s.parse().map_err(|_| ApiError::not_found("Template"))
}

async fn dto(
    s: &AppState,
    caller: &osvdi_core::Caller,
    t: &Template,
) -> Result<TemplateDto, ApiError> {
    Ok(TemplateDto::new(
        t,
        s.core.share_names(t).await?,
        s.core.access(caller, t),
    ))
}

/// Lists the templates the caller may see.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<TemplateDto>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(s): State<AppState>,
    auth: Authed,
) -> Result<Json<Vec<TemplateDto>>, ApiError> {
    let ts = s.core.list_templates(&auth.caller).await?;
    let mut out = Vec::with_capacity(ts.len());
    for t in &ts {
        out.push(dto(&s, &auth.caller, t).await?);
    }
    Ok(Json(out))
}

/// Creates a template (stewards and admins); upload its image next.
#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", request_body = CreateTemplate,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, description = "Created; the body's `id` names it", body = TemplateDto),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "Name taken", body = ErrorBody)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    auth: Authed,
    ApiJson(req): ApiJson<CreateTemplate>,
) -> Result<(StatusCode, Json<TemplateDto>), ApiError> {
    let (spec, visibility, groups) = req.into_parts()?;
    let t = s
        .core
        .create_template(
            &auth.caller,
            NewTemplate {
                spec,
                sharing: Sharing { visibility, groups },
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(dto(&s, &auth.caller, &t).await?)))
}

/// One template.
#[utoipa::path(get, path = "/api/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = TemplateDto), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Json<TemplateDto>, ApiError> {
    let t = s.core.template(&auth.caller, template_id(&id)?).await?;
    Ok(Json(dto(&s, &auth.caller, &t).await?))
}

/// Changes a template's description (fields given are replaced).
#[utoipa::path(patch, path = "/api/v1/templates/{id}", tag = "templates", request_body = UpdateTemplate,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = TemplateDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn update(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateTemplate>,
) -> Result<Json<TemplateDto>, ApiError> {
    let id = template_id(&id)?;
    let current = s.core.template(&auth.caller, id).await?;
    let t = s
        .core
        .update_template(&auth.caller, id, req.apply(current.spec)?)
        .await?;
    Ok(Json(dto(&s, &auth.caller, &t).await?))
}

/// Deletes a template, its versions and images. Refused (409) while desktops use it.
#[utoipa::path(delete, path = "/api/v1/templates/{id}", tag = "templates",
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn delete(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core
        .delete_template(&auth.caller, template_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The SHA-256 of a `Content-Digest: sha-256=:<base64>:` header (RFC 9530), if present.
fn content_digest(headers: &HeaderMap) -> Result<Option<[u8; 32]>, ApiError> {
    let Some(v) = headers.get("content-digest") else {
        return Ok(None);
    };
    let bad =
        || ApiError::bad_request("Content-Digest must be sha-256=:<base64 of the 32-byte digest>:");
    let v = v.to_str().map_err(|_| bad())?;
    for item in v.split(',') {
        let Some((alg, value)) = item.trim().split_once('=') else {
            return Err(bad());
        };
        if alg.trim().eq_ignore_ascii_case("sha-256") {
            let b64 = value
                .trim()
                .strip_prefix(':')
                .and_then(|x| x.strip_suffix(':'))
                .ok_or_else(bad)?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| bad())?;
            return <[u8; 32]>::try_from(raw).map(Some).map_err(|_| bad());
        }
    }
    Ok(None)
}

/// Uploads a disk image (qcow2, or raw with a partition table) as the request body; it
/// becomes the template's next version once verified. Send `Content-Length`, and
/// `Content-Digest: sha-256=:<base64>:` to have the transfer checked end to end.
#[utoipa::path(put, path = "/api/v1/templates/{id}/image", tag = "templates",
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The image file"),
    responses((status = 201, description = "Verified; the new version", body = VersionDto),
        (status = 400, description = "Truncated upload or checksum mismatch", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Another upload to this template is in progress", body = ErrorBody),
        (status = 413, description = "Larger than allowed", body = ErrorBody),
        (status = 415, description = "Not a qcow2 or raw disk image", body = ErrorBody),
        (status = 422, description = "Refused: backing file, external data file, corrupt, ...", body = ErrorBody)))]
pub(crate) async fn upload_image(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<VersionDto>), ApiError> {
    let id = template_id(&id)?;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Bad Content-Length"))
        })
        .transpose()?;
    let expect = UploadExpectation {
        length,
        sha256: content_digest(&headers)?,
    };
    if let Err(e) = s.core.authorize_upload(&auth.caller, id, expect).await {
        s.metrics.upload("rejected", 0);
        drain(body).await;
        return Err(e.into());
    }
    let result = s
        .core
        .upload_image(&auth.caller, id, expect, body.into_data_stream())
        .await;
    match &result {
        Ok(v) => s.metrics.upload("success", v.size_bytes),
        Err(e) => {
            let status = ApiError::from_ref(e);
            s.metrics.upload(
                if status.is_client_error() {
                    "rejected"
                } else {
                    "failed"
                },
                0,
            );
        }
    }
    Ok((StatusCode::CREATED, Json(VersionDto::from(&result?))))
}

/// Reads and discards up to 16 MiB of a body refused before it was read, so that small
/// clients that do not wait for `100 Continue` get the answer instead of a reset connection.
/// Larger bodies are cut off (clients should send `Expect: 100-continue`, as curl does).
async fn drain(body: Body) {
    const LIMIT: usize = 16 << 20;
    let mut stream = body.into_data_stream();
    let mut seen = 0;
    let read = async {
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut stream).await {
            seen += chunk.len();
            if seen > LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
}

/// Sets from where and when the template's desktops may be used (its steward and admins).
#[utoipa::path(put, path = "/api/v1/templates/{id}/policy", tag = "templates", request_body = PolicyDto,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = TemplateDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_policy(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PolicyDto>,
) -> Result<Json<TemplateDto>, ApiError> {
    let t = s
        .core
        .set_policy(&auth.caller, template_id(&id)?, req.into_policy()?)
        .await?;
    Ok(Json(dto(&s, &auth.caller, &t).await?))
}

/// Sets who may see and launch the template.
#[utoipa::path(put, path = "/api/v1/templates/{id}/sharing", tag = "templates", request_body = SharingDto,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = TemplateDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn share(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SharingDto>,
) -> Result<Json<TemplateDto>, ApiError> {
    let sharing = Sharing {
        visibility: parse(&req.visibility)?,
        groups: req.groups,
    };
    let t = s
        .core
        .share_template(&auth.caller, template_id(&id)?, sharing)
        .await?;
    Ok(Json(dto(&s, &auth.caller, &t).await?))
}

/// A template's versions, newest first.
#[utoipa::path(get, path = "/api/v1/templates/{id}/versions", tag = "templates",
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<VersionDto>), (status = 404, body = ErrorBody)))]
pub(crate) async fn versions(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Json<Vec<VersionDto>>, ApiError> {
    let vs = s.core.versions(&auth.caller, template_id(&id)?).await?;
    Ok(Json(vs.iter().map(VersionDto::from).collect()))
}

/// Deletes one version and its image. Refused (409) while desktops use it.
#[utoipa::path(delete, path = "/api/v1/templates/{id}/versions/{version}", tag = "templates",
    params(("id" = String, Path), ("version" = u32, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn delete_version(
    State(s): State<AppState>,
    auth: Authed,
    Path((id, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let version: u32 = version
        .parse()
        .map_err(|_| ApiError::not_found("Version"))?;
    s.core
        .delete_version(&auth.caller, template_id(&id)?, version)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
