-- Warm pools (SQLite). Keep in step with ../postgres/0005_warm.sql.
-- A warm desktop was started ahead by the pool planner and not yet handed to anyone.
ALTER TABLE desktops ADD COLUMN warm INTEGER NOT NULL DEFAULT 0;
-- How many never-used started desktops a template keeps ready for on-demand launches.
ALTER TABLE templates ADD COLUMN warm_pool INTEGER NOT NULL DEFAULT 0;
