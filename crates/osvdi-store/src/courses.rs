//! Courses. The schedule is stored as JSON through mirror types (the domain types carry no
//! serde).

use osvdi_model::{Course, CourseId, CourseSchedule, Date, UnixMillis, Weekday};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::conv::{millis, parse, u32_col};
use crate::{Result, Store, StoreError};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScheduleRow {
    Once {
        start: i64,
        end: i64,
    },
    Weekly {
        first: (i16, u8, u8),
        last: (i16, u8, u8),
        days: Vec<String>,
        start: u16,
        end: u16,
        except: Vec<(i16, u8, u8)>,
        time_zone: String,
    },
}

fn d(x: &Date) -> (i16, u8, u8) {
    (x.year, x.month, x.day)
}

fn date((year, month, day): (i16, u8, u8)) -> Date {
    Date { year, month, day }
}

fn encode(s: &CourseSchedule) -> String {
    let row = match s {
        CourseSchedule::Once { start, end } => ScheduleRow::Once {
            start: start.0,
            end: end.0,
        },
        CourseSchedule::Weekly {
            first,
            last,
            days,
            start,
            end,
            except,
            time_zone,
        } => ScheduleRow::Weekly {
            first: d(first),
            last: d(last),
            days: days.iter().map(|x| x.as_str().to_owned()).collect(),
            start: *start,
            end: *end,
            except: except.iter().map(d).collect(),
            time_zone: time_zone.clone(),
        },
    };
    // Plain numbers, strings and vectors always serialise.
    serde_json::to_string(&row).unwrap_or_default()
}

fn decode(text: &str) -> Result<CourseSchedule> {
    let bad = |what: &str| StoreError::Corrupt(format!("course schedule: {what}"));
    let row: ScheduleRow = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    Ok(match row {
        ScheduleRow::Once { start, end } => CourseSchedule::Once {
            start: UnixMillis(start),
            end: UnixMillis(end),
        },
        ScheduleRow::Weekly {
            first,
            last,
            days,
            start,
            end,
            except,
            time_zone,
        } => CourseSchedule::Weekly {
            first: date(first),
            last: date(last),
            days: days
                .iter()
                .map(|x| Weekday::parse(x).ok_or_else(|| bad(x)))
                .collect::<Result<_>>()?,
            start,
            end,
            except: except.into_iter().map(date).collect(),
            time_zone,
        },
    })
}

fn course_from(row: &AnyRow) -> Result<Course> {
    Ok(Course {
        id: parse(row, "id")?,
        name: row.try_get("name")?,
        template: parse(row, "template_id")?,
        group: parse(row, "group_id")?,
        desktops: u32_col(row, "desktops")?,
        schedule: decode(&row.try_get::<String, _>("schedule")?)?,
        created_by: parse(row, "created_by")?,
        created_at: millis(row, "created_at")?,
    })
}

impl Store {
    /// Adds a course. [`StoreError::Conflict`] if the name is taken.
    pub async fn create_course(&self, c: &Course) -> Result<()> {
        sqlx::query(
            "INSERT INTO courses (id, name, template_id, group_id, desktops, schedule, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(c.id.to_string())
        .bind(&c.name)
        .bind(c.template.to_string())
        .bind(c.group.to_string())
        .bind(i64::from(c.desktops))
        .bind(encode(&c.schedule))
        .bind(c.created_by.to_string())
        .bind(c.created_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn courses(&self) -> Result<Vec<Course>> {
        let rows = sqlx::query("SELECT * FROM courses ORDER BY lower(name)")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(course_from).collect()
    }

    pub async fn course(&self, id: CourseId) -> Result<Course> {
        let row = sqlx::query("SELECT * FROM courses WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        course_from(&row)
    }

    pub async fn delete_course(&self, id: CourseId) -> Result<()> {
        let done = sqlx::query("DELETE FROM courses WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_round_trip() {
        let weekly = CourseSchedule::Weekly {
            first: Date {
                year: 2026,
                month: 10,
                day: 12,
            },
            last: Date {
                year: 2027,
                month: 2,
                day: 5,
            },
            days: vec![Weekday::Tue, Weekday::Thu],
            start: 600,
            end: 720,
            except: vec![Date {
                year: 2026,
                month: 12,
                day: 29,
            }],
            time_zone: "Europe/Berlin".into(),
        };
        assert_eq!(decode(&encode(&weekly)).unwrap(), weekly);
        let once = CourseSchedule::Once {
            start: UnixMillis(1),
            end: UnixMillis(2),
        };
        assert_eq!(decode(&encode(&once)).unwrap(), once);
    }
}
