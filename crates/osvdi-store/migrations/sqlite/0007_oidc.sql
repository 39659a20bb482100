-- OpenID Connect identities (SQLite). Keep in step with ../postgres/0007_oidc.sql.

-- Who a person is at an identity provider: (issuer, subject) is the stable key, never the
-- e-mail. Name and e-mail are refreshed at every login.
CREATE TABLE oidc_identities (
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    display_name  TEXT,
    email         TEXT,
    -- The role the mapping rules gave at the last login (NULL: none), so that a role that
    -- came from the rules can be taken back and one set by hand is left alone.
    mapped_role   TEXT,
    claims_digest TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);

-- Group memberships that mapping rules granted (the membership itself is in group_members).
-- Only these are removed when the rules stop granting them; memberships an admin set by
-- hand have no row here. Removing the membership removes this row.
CREATE TABLE mapped_memberships (
    group_id   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id),
    FOREIGN KEY (group_id, user_id) REFERENCES group_members (group_id, user_id) ON DELETE CASCADE
);

-- Login sessions opened through a provider: what RP-initiated logout needs.
CREATE TABLE oidc_sessions (
    token_hash TEXT PRIMARY KEY REFERENCES auth_sessions (token_hash) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    id_token   TEXT NOT NULL
);
