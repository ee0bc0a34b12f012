-- 0001: the state of one rulesd: pending, cooldowns, history, holds, intents, audit,
-- kill switch and last runs. Times are INTEGER unix nanoseconds (UTC). A Value is two
-- nullable columns, *_num (minor units) and *_text (a status); both NULL is absent.

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: an id is never reused after retention, so `rulesd undo ID` cannot hit another record
    time_ns     INTEGER NOT NULL,
    run_id      TEXT    NOT NULL DEFAULT '',
    group_name  TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    account_id  TEXT    NOT NULL,
    level       TEXT    NOT NULL DEFAULT '',
    object_id   TEXT    NOT NULL,
    object_name TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL DEFAULT '',
    field       TEXT    NOT NULL DEFAULT '',
    before_num  INTEGER,
    before_text TEXT,
    after_num   INTEGER,
    after_text  TEXT,
    result      TEXT    NOT NULL,
    capped_by   TEXT    NOT NULL DEFAULT '',
    error       TEXT    NOT NULL DEFAULT '',
    labels      TEXT    NOT NULL DEFAULT '{}', -- JSON object of strings
    vals        TEXT    NOT NULL DEFAULT '{}', -- JSON object of number | string | null
    dry_run     INTEGER NOT NULL DEFAULT 0,
    CHECK (before_num IS NULL OR before_text IS NULL),
    CHECK (after_num IS NULL OR after_text IS NULL)
);
CREATE INDEX audit_by_time   ON audit (time_ns, id);
CREATE INDEX audit_by_object ON audit (object_id, time_ns);
CREATE INDEX audit_by_rule   ON audit (rule, time_ns);
CREATE INDEX audit_by_account ON audit (account_id, time_ns);
CREATE INDEX audit_last      ON audit (group_name, rule, result, dry_run, object_id, time_ns);

CREATE TABLE pending (
    group_name   TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    object_id    TEXT    NOT NULL,
    since_ns     INTEGER NOT NULL,
    last_eval_ns INTEGER NOT NULL,
    PRIMARY KEY (group_name, rule, account_id, object_id)
) WITHOUT ROWID;

CREATE TABLE cooldowns (
    group_name TEXT    NOT NULL,
    rule       TEXT    NOT NULL,
    dry_run    INTEGER NOT NULL,
    object_id  TEXT    NOT NULL,
    until_ns   INTEGER NOT NULL,
    PRIMARY KEY (group_name, rule, dry_run, object_id)
) WITHOUT ROWID;

CREATE TABLE changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns     INTEGER NOT NULL,
    dry_run     INTEGER NOT NULL,
    run_id      TEXT    NOT NULL DEFAULT '',
    group_name  TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    account_id  TEXT    NOT NULL,
    object_id   TEXT    NOT NULL,
    field       TEXT    NOT NULL,
    before_num  INTEGER,
    before_text TEXT,
    after_num   INTEGER,
    after_text  TEXT,
    audit_id    INTEGER REFERENCES audit (id) ON DELETE SET NULL
);
CREATE INDEX changes_by_account ON changes (dry_run, account_id, time_ns);
CREATE INDEX changes_by_audit   ON changes (audit_id); -- for ON DELETE SET NULL during audit retention

CREATE TABLE last_writes (
    dry_run    INTEGER NOT NULL,
    object_id  TEXT    NOT NULL,
    field      TEXT    NOT NULL,
    account_id TEXT    NOT NULL,
    value_num  INTEGER,
    value_text TEXT,
    time_ns    INTEGER NOT NULL,
    group_name TEXT    NOT NULL,
    rule       TEXT    NOT NULL,
    audit_id   INTEGER REFERENCES audit (id) ON DELETE SET NULL,
    PRIMARY KEY (dry_run, object_id, field)
);
CREATE INDEX last_writes_by_audit ON last_writes (audit_id);

CREATE TABLE holds (
    dry_run   INTEGER NOT NULL,
    object_id TEXT    NOT NULL,
    field     TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    until_ns  INTEGER NOT NULL,
    PRIMARY KEY (dry_run, object_id, field, reason)
) WITHOUT ROWID;

CREATE TABLE intents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ns   INTEGER NOT NULL,
    run_id       TEXT    NOT NULL DEFAULT '',
    group_name   TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    level        TEXT    NOT NULL DEFAULT '',
    object_id    TEXT    NOT NULL,
    object_name  TEXT    NOT NULL DEFAULT '',
    kind         TEXT    NOT NULL DEFAULT '',
    field        TEXT    NOT NULL,
    before_num   INTEGER,
    before_text  TEXT,
    target_num   INTEGER,
    target_text  TEXT,
    completed_ns INTEGER,
    result       TEXT,
    error        TEXT,
    audit_id     INTEGER REFERENCES audit (id) ON DELETE SET NULL,
    CHECK ((target_num IS NULL) <> (target_text IS NULL))
);
CREATE INDEX intents_unfinished ON intents (account_id, id) WHERE completed_ns IS NULL;
CREATE INDEX intents_by_audit   ON intents (audit_id);

CREATE TABLE kill_switches (
    group_name TEXT    NOT NULL DEFAULT '',
    account_id TEXT    NOT NULL DEFAULT '',
    reason     TEXT    NOT NULL DEFAULT '',
    engaged_by TEXT    NOT NULL DEFAULT '',
    engaged_ns INTEGER NOT NULL,
    PRIMARY KEY (group_name, account_id)
);

CREATE TABLE runs (
    group_name   TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    run_id       TEXT    NOT NULL DEFAULT '',
    scheduled_ns INTEGER,
    started_ns   INTEGER,
    ended_ns     INTEGER,
    result       TEXT    NOT NULL DEFAULT '',
    error        TEXT    NOT NULL DEFAULT '',
    counts       TEXT    NOT NULL DEFAULT '{}', -- JSON object of integers
    PRIMARY KEY (group_name, account_id)
);
