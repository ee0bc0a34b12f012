-- 0001: the state of rulesd: pending, cooldowns, history, holds, intents, audit, kill
-- switch and last runs. The same schema as migrations/sqlite/0001_init.sql, in
-- PostgreSQL's dialect. Times are BIGINT unix nanoseconds (UTC), as in SQLite, so both
-- backends compare and round-trip times identically. A Value is two nullable columns,
-- *_num (minor units) and *_text (a status); both NULL is absent. Identifiers that the
-- store sorts by are COLLATE "C", so that the order is bytewise, as in SQLite, whatever
-- the database's locale.

CREATE TABLE audit (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- a sequence: an id is never reused after retention, so `rulesd undo ID` cannot hit another record
    time_ns     BIGINT  NOT NULL,
    run_id      TEXT    NOT NULL DEFAULT '',
    group_name  TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    account_id  TEXT    NOT NULL,
    level       TEXT    NOT NULL DEFAULT '',
    object_id   TEXT    NOT NULL,
    object_name TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL DEFAULT '',
    field       TEXT    NOT NULL DEFAULT '',
    before_num  BIGINT,
    before_text TEXT,
    after_num   BIGINT,
    after_text  TEXT,
    result      TEXT    NOT NULL,
    capped_by   TEXT    NOT NULL DEFAULT '',
    error       TEXT    NOT NULL DEFAULT '',
    labels      JSONB   NOT NULL DEFAULT '{}', -- object of strings
    vals        JSONB   NOT NULL DEFAULT '{}', -- object of number | string | null
    dry_run     BOOLEAN NOT NULL DEFAULT false,
    CHECK (before_num IS NULL OR before_text IS NULL),
    CHECK (after_num IS NULL OR after_text IS NULL)
);
CREATE INDEX audit_by_time    ON audit (time_ns, id);
CREATE INDEX audit_by_object  ON audit (object_id, time_ns);
CREATE INDEX audit_by_rule    ON audit (rule, time_ns);
CREATE INDEX audit_by_account ON audit (account_id, time_ns);
CREATE INDEX audit_last       ON audit (group_name, rule, result, dry_run, object_id, time_ns);

CREATE TABLE pending (
    group_name   TEXT   NOT NULL,
    rule         TEXT   NOT NULL,
    account_id   TEXT   NOT NULL,
    object_id    TEXT   COLLATE "C" NOT NULL,
    since_ns     BIGINT NOT NULL,
    last_eval_ns BIGINT NOT NULL,
    PRIMARY KEY (group_name, rule, account_id, object_id)
);

CREATE TABLE cooldowns (
    group_name TEXT    NOT NULL,
    rule       TEXT    NOT NULL,
    dry_run    BOOLEAN NOT NULL,
    object_id  TEXT    NOT NULL,
    until_ns   BIGINT  NOT NULL,
    PRIMARY KEY (group_name, rule, dry_run, object_id)
);

CREATE TABLE changes (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_ns     BIGINT  NOT NULL,
    dry_run     BOOLEAN NOT NULL,
    run_id      TEXT    NOT NULL DEFAULT '',
    group_name  TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    account_id  TEXT    NOT NULL,
    object_id   TEXT    NOT NULL,
    field       TEXT    NOT NULL,
    before_num  BIGINT,
    before_text TEXT,
    after_num   BIGINT,
    after_text  TEXT,
    audit_id    BIGINT  REFERENCES audit (id) ON DELETE SET NULL
);
CREATE INDEX changes_by_account ON changes (dry_run, account_id, time_ns);
CREATE INDEX changes_by_audit   ON changes (audit_id); -- for ON DELETE SET NULL during audit retention

CREATE TABLE last_writes (
    dry_run    BOOLEAN NOT NULL,
    object_id  TEXT    COLLATE "C" NOT NULL,
    field      TEXT    COLLATE "C" NOT NULL,
    account_id TEXT    NOT NULL,
    value_num  BIGINT,
    value_text TEXT,
    time_ns    BIGINT  NOT NULL,
    group_name TEXT    NOT NULL,
    rule       TEXT    NOT NULL,
    audit_id   BIGINT  REFERENCES audit (id) ON DELETE SET NULL,
    PRIMARY KEY (dry_run, object_id, field)
);
CREATE INDEX last_writes_by_audit ON last_writes (audit_id);

CREATE TABLE holds (
    dry_run   BOOLEAN NOT NULL,
    object_id TEXT    COLLATE "C" NOT NULL,
    field     TEXT    COLLATE "C" NOT NULL,
    reason    TEXT    COLLATE "C" NOT NULL,
    until_ns  BIGINT  NOT NULL,
    PRIMARY KEY (dry_run, object_id, field, reason)
);

CREATE TABLE intents (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_ns   BIGINT  NOT NULL,
    run_id       TEXT    NOT NULL DEFAULT '',
    group_name   TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    level        TEXT    NOT NULL DEFAULT '',
    object_id    TEXT    NOT NULL,
    object_name  TEXT    NOT NULL DEFAULT '',
    kind         TEXT    NOT NULL DEFAULT '',
    field        TEXT    NOT NULL,
    before_num   BIGINT,
    before_text  TEXT,
    target_num   BIGINT,
    target_text  TEXT,
    completed_ns BIGINT,
    result       TEXT,
    error        TEXT,
    audit_id     BIGINT  REFERENCES audit (id) ON DELETE SET NULL,
    CHECK ((target_num IS NULL) <> (target_text IS NULL))
);
CREATE INDEX intents_unfinished ON intents (account_id, id) WHERE completed_ns IS NULL;
CREATE INDEX intents_by_audit   ON intents (audit_id);

CREATE TABLE kill_switches (
    group_name TEXT   COLLATE "C" NOT NULL DEFAULT '',
    account_id TEXT   COLLATE "C" NOT NULL DEFAULT '',
    reason     TEXT   NOT NULL DEFAULT '',
    engaged_by TEXT   NOT NULL DEFAULT '',
    engaged_ns BIGINT NOT NULL,
    PRIMARY KEY (group_name, account_id)
);

CREATE TABLE runs (
    group_name   TEXT   COLLATE "C" NOT NULL,
    account_id   TEXT   COLLATE "C" NOT NULL,
    run_id       TEXT   NOT NULL DEFAULT '',
    scheduled_ns BIGINT,
    started_ns   BIGINT,
    ended_ns     BIGINT,
    result       TEXT   NOT NULL DEFAULT '',
    error        TEXT   NOT NULL DEFAULT '',
    counts       JSONB  NOT NULL DEFAULT '{}', -- object of integers
    PRIMARY KEY (group_name, account_id)
);
