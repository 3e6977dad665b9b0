-- Daily rollups (issue 14): the additive counts of one site and one closed UTC day, so a
-- year-long overview reads a few hundred rows, not millions. Owned by collector/store/rollups.py:
-- `counts` is the JSON the analytics computed from the raw rows of that day (NULL while a
-- computation is under way, `token` naming it). Triggers (the migration's Python step,
-- written per engine) delete a day's row whenever a row counted in that day is written, so a
-- row that exists is always equal to a recount; reads take missing days from the raw rows.
CREATE TABLE daily_rollups (
    site_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
    counts TEXT,
    token TEXT,
    computed_at {REAL} NOT NULL,
    PRIMARY KEY (site_id, day)
);
