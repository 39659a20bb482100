-- osvdi foundation schema (PostgreSQL). Keep in step with ../sqlite/0001_foundation.sql:
-- same tables, columns, constraints and indexes; only the type names differ.
-- Times are milliseconds since the Unix epoch; ids are UUID strings.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('user', 'steward', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE user_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

-- Login sessions. Only a SHA-256 of the token is kept.
CREATE TABLE auth_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    client      TEXT
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expiry ON auth_sessions (expires_at);

CREATE TABLE templates (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    os          TEXT NOT NULL,
    vcpus       BIGINT NOT NULL CHECK (vcpus > 0),
    memory_mb   BIGINT NOT NULL CHECK (memory_mb > 0),
    disk_gb     BIGINT NOT NULL CHECK (disk_gb > 0),
    vgpu_type   TEXT,
    protocols   TEXT NOT NULL,  -- comma-separated display protocols
    tags        TEXT NOT NULL,  -- comma-separated tags
    owner_id    TEXT NOT NULL REFERENCES users (id),
    visibility  TEXT NOT NULL CHECK (visibility IN ('private', 'groups', 'everyone')),
    next_version BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX templates_name ON templates (lower(name));

CREATE TABLE template_shares (
    template_id TEXT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    group_id    TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (template_id, group_id)
);

CREATE TABLE template_versions (
    template_id  TEXT NOT NULL REFERENCES templates (id),
    version      BIGINT NOT NULL CHECK (version > 0),
    state        TEXT NOT NULL CHECK (state IN ('uploading', 'ready')),
    format       TEXT CHECK (format IN ('qcow2', 'raw')),
    size_bytes   BIGINT NOT NULL,
    virtual_size BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    uploaded_by  TEXT NOT NULL REFERENCES users (id),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (template_id, version)
);
-- At most one upload in flight per template.
CREATE UNIQUE INDEX template_versions_one_upload ON template_versions (template_id)
    WHERE state = 'uploading';

-- Desktops. The compute backends fill in the rest of their life; here they pin a version.
CREATE TABLE desktops (
    id               TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL REFERENCES users (id),
    template_id      TEXT NOT NULL,
    template_version BIGINT NOT NULL,
    state            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    FOREIGN KEY (template_id, template_version) REFERENCES template_versions (template_id, version)
);
CREATE INDEX desktops_template ON desktops (template_id, template_version);
CREATE INDEX desktops_owner ON desktops (owner_id);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    object      TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failed')),
    client      TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
