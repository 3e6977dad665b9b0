-- Issue 17. The holdout group a cart fell in when it was marked abandoned (collector/experiments/holdout.py):
-- NULL no holdout was running, 0 treated (its reminders were queued), 1 held out (no reminders).
-- Kept on the cart, so the stats compare the groups as they were drawn even after holdout_percent changes.
ALTER TABLE carts ADD COLUMN holdout INTEGER;
-- The weekly report email (collector/reports/weekly.py): each dashboard user may opt out.
ALTER TABLE users ADD COLUMN weekly_report INTEGER NOT NULL DEFAULT 1;
-- One row per user and reported week (ISO week, e.g. 2026-W49): a week is reported once, even with two sweepers.
CREATE TABLE weekly_reports (
    user_id BIGINT NOT NULL REFERENCES users(id),
    week TEXT NOT NULL,
    sent_at {REAL} NOT NULL,
    PRIMARY KEY (user_id, week)
);
