-- The profile a job makes (README, "Renditions"); NULL: the worker's default profile. A
-- thumbnail's renditions live in its `result` JSON, so a replace swaps the whole set in the
-- one row update that makes the new job's result current.
ALTER TABLE jobs ADD COLUMN profile TEXT;
