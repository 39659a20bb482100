-- Template access policies (PostgreSQL). Keep in step with ../sqlite/0003_policies.sql.
-- JSON, see src/policy.rs; '' means the default policy (anyone it is shared with, any time, anywhere).
ALTER TABLE templates ADD COLUMN policy TEXT NOT NULL DEFAULT '';
