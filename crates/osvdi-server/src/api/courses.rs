//! Courses (advance reservations) and the capacity calendar.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use osvdi_core::NewCourse;
use osvdi_model::{Course, CourseSchedule};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Authed};
use crate::wire::{date, minute, rfc3339};

/// A course: `desktops` desktops of a template for a group in every slot of its schedule.
#[derive(Deserialize, Serialize, ToSchema)]
pub(crate) struct CourseDto {
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub template_id: String,
    /// The group whose members get the reserved desktops.
    pub group: String,
    pub desktops: u32,
    pub schedule: ScheduleDto,
    #[serde(default)]
    pub created_at: String,
}

/// Either one slot or a weekly timetable.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ScheduleDto {
    /// One slot: RFC 3339 start and end.
    Once { start: String, end: String },
    /// Weekly between two dates, in an IANA time zone (daylight saving is handled).
    Weekly {
        first: String,
        last: String,
        days: Vec<String>,
        start: String,
        end: String,
        #[serde(default)]
        except: Vec<String>,
        time_zone: String,
    },
}

fn instant(s: &str) -> Result<osvdi_model::UnixMillis, ApiError> {
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|_| ApiError::bad_request(format!("Invalid time '{s}'; use RFC 3339")))?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| ApiError::bad_request("Time before 1970"))?
        .as_millis();
    Ok(osvdi_model::UnixMillis(
        i64::try_from(ms).unwrap_or(i64::MAX),
    ))
}

fn hhmm(m: osvdi_model::Minute) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl ScheduleDto {
    fn into_schedule(self) -> Result<CourseSchedule, ApiError> {
        Ok(match self {
            ScheduleDto::Once { start, end } => {
                let (start, end) = (instant(&start)?, instant(&end)?);
                if end <= start {
                    return Err(ApiError::bad_request("The slot ends before it starts"));
                }
                CourseSchedule::Once { start, end }
            }
            ScheduleDto::Weekly {
                first,
                last,
                days,
                start,
                end,
                except,
                time_zone,
            } => {
                let (start, end) = (minute(&start)?, minute(&end)?);
                if end <= start || days.is_empty() {
                    return Err(ApiError::bad_request(
                        "Weekly slots need days and a start before their end",
                    ));
                }
                CourseSchedule::Weekly {
                    first: date(&first)?,
                    last: date(&last)?,
                    days: days
                        .iter()
                        .map(|d| {
                            osvdi_model::Weekday::parse(d)
                                .ok_or_else(|| ApiError::bad_request(format!("Unknown day '{d}'")))
                        })
                        .collect::<Result<_, _>>()?,
                    start,
                    end,
                    except: except.iter().map(|d| date(d)).collect::<Result<_, _>>()?,
                    time_zone,
                }
            }
        })
    }

    fn from_schedule(s: &CourseSchedule) -> Self {
        match s {
            CourseSchedule::Once { start, end } => ScheduleDto::Once {
                start: rfc3339(*start),
                end: rfc3339(*end),
            },
            CourseSchedule::Weekly {
                first,
                last,
                days,
                start,
                end,
                except,
                time_zone,
            } => ScheduleDto::Weekly {
                first: first.to_string(),
                last: last.to_string(),
                days: days.iter().map(|d| d.as_str().to_owned()).collect(),
                start: hhmm(*start),
                end: hhmm(*end),
                except: except.iter().map(ToString::to_string).collect(),
                time_zone: time_zone.clone(),
            },
        }
    }
}

async fn dto(s: &AppState, c: &Course) -> Result<CourseDto, ApiError> {
    let group = s
        .core
        .names_of_groups(&[c.group])
        .await?
        .pop()
        .unwrap_or_default();
    Ok(CourseDto {
        id: c.id.to_string(),
        name: c.name.clone(),
        template_id: c.template.to_string(),
        group,
        desktops: c.desktops,
        schedule: ScheduleDto::from_schedule(&c.schedule),
        created_at: rfc3339(c.created_at),
    })
}

/// Courses: all for stewards and admins, one's groups' for others.
#[utoipa::path(get, path = "/api/v1/courses", tag = "courses", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<CourseDto>)))]
pub(crate) async fn list(
    State(s): State<AppState>,
    auth: Authed,
) -> Result<Json<Vec<CourseDto>>, ApiError> {
    let mut out = vec![];
    for c in s.core.courses(&auth.caller).await? {
        out.push(dto(&s, &c).await?);
    }
    Ok(Json(out))
}

/// Books a course. Accepted only if every slot fits beside the courses already booked;
/// otherwise 409 naming the first slot that does not and what is missing.
#[utoipa::path(post, path = "/api/v1/courses", tag = "courses", request_body = CourseDto,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = CourseDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "A slot does not fit", body = ErrorBody)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    auth: Authed,
    ApiJson(req): ApiJson<CourseDto>,
) -> Result<(StatusCode, Json<CourseDto>), ApiError> {
    let template = req
        .template_id
        .parse()
        .map_err(|_| ApiError::not_found("Template"))?;
    let new = NewCourse {
        name: req.name,
        template,
        group: req.group,
        desktops: req.desktops,
        schedule: req.schedule.into_schedule()?,
    };
    let c = s.core.create_course(&auth.caller, new).await?;
    Ok((StatusCode::CREATED, Json(dto(&s, &c).await?)))
}

/// Cancels a course (its creator or an admin).
#[utoipa::path(delete, path = "/api/v1/courses/{id}", tag = "courses", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(s): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = id.parse().map_err(|_| ApiError::not_found("Course"))?;
    s.core.delete_course(&auth.caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub(crate) struct CapacityParams {
    /// Days ahead (default 14, at most 366).
    days: Option<u32>,
}

/// One reservation slot with how many of its desktops are in use.
#[derive(Serialize, ToSchema)]
pub(crate) struct SlotDto {
    pub course_id: String,
    pub start: String,
    pub end: String,
    pub reserved: u32,
    pub in_use: u32,
}

/// The capacity calendar: reservation slots from now on (stewards and admins).
#[utoipa::path(get, path = "/api/v1/admin/capacity", tag = "courses", params(CapacityParams),
    security(("bearer" = []), ("cookie" = [])), responses((status = 200, body = Vec<SlotDto>), (status = 403, body = ErrorBody)))]
pub(crate) async fn capacity(
    State(s): State<AppState>,
    auth: Authed,
    Query(p): Query<CapacityParams>,
) -> Result<Json<Vec<SlotDto>>, ApiError> {
    let slots = s
        .core
        .capacity(&auth.caller, s.core.now(), p.days.unwrap_or(14).min(366))
        .await?;
    Ok(Json(
        slots
            .into_iter()
            .map(|v| SlotDto {
                course_id: v.course,
                start: rfc3339(v.start),
                end: rfc3339(v.end),
                reserved: v.reserved,
                in_use: v.in_use,
            })
            .collect(),
    ))
}
