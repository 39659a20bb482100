-- Desktop lifecycle (PostgreSQL). Keep in step with ../sqlite/0002_desktops.sql.

ALTER TABLE templates ADD COLUMN ready_rule TEXT NOT NULL DEFAULT 'after:20';
ALTER TABLE templates ADD COLUMN idle_timeout_min BIGINT;
ALTER TABLE templates ADD COLUMN max_lifetime_min BIGINT;

ALTER TABLE desktops ADD COLUMN reason TEXT;
ALTER TABLE desktops ADD COLUMN state_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE desktops ADD COLUMN last_activity BIGINT NOT NULL DEFAULT 0;
ALTER TABLE desktops ADD COLUMN expires_at BIGINT;
CREATE INDEX desktops_state ON desktops (state);

-- Every state change of every desktop, written before the change is acted on.
CREATE TABLE desktop_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    desktop_id TEXT NOT NULL REFERENCES desktops (id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    reason     TEXT
);
CREATE INDEX desktop_events_desktop ON desktop_events (desktop_id, id);
