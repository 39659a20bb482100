-- Courses (SQLite). Keep in step with ../postgres/0004_courses.sql.
CREATE TABLE courses (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    template_id TEXT NOT NULL REFERENCES templates (id),
    group_id   TEXT NOT NULL REFERENCES user_groups (id),
    desktops   INTEGER NOT NULL CHECK (desktops > 0),
    schedule   TEXT NOT NULL, -- JSON, see src/courses.rs
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX courses_name ON courses (lower(name));

-- The reservation slot a desktop draws from ("course-id:slot-index"), if any.
ALTER TABLE desktops ADD COLUMN reservation TEXT;
