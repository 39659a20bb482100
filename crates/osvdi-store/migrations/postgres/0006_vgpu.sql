-- vGPU instances (PostgreSQL). Keep in step with ../sqlite/0006_vgpu.sql.
-- The mdev instance (UUID) handed to a desktop, released when the desktop ends or fails.
ALTER TABLE desktops ADD COLUMN vgpu_instance TEXT;
