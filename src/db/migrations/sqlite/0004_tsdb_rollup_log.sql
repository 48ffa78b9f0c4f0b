-- Rollup deltas not yet folded into ts_rollup_5m/_1h/_1d (docs/decisions/
-- 0003-tsdb.md, "Deferred rollups"). A write of new points appends one row
-- per (series, 5-minute bucket) it touched, with that batch's aggregate;
-- about twice a second the writer folds the rows into the three rollup
-- tables and deletes them, in one transaction. Rollup queries add the rows
-- still here, so they stay exact. Appended by rowid: a commit writes the
-- last page or two instead of a page per series in each rollup table.
CREATE TABLE ts_rollup_log (
    seq INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,          -- 5-minute bucket start, epoch ms
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    last REAL NOT NULL,
    last_ts INTEGER NOT NULL
);
