-- 0002: per-tick leases, so that replicas sharing one database run each
-- (group, account) exactly once per tick. One row per (group, account): the last
-- tick claimed and its owner. TryAcquire claims a tick with one upsert; the row lock
-- taken by INSERT ... ON CONFLICT DO UPDATE makes it atomic across replicas.

CREATE TABLE leases (
    group_name  TEXT   NOT NULL,
    account_id  TEXT   NOT NULL,
    tick_ns     BIGINT NOT NULL,
    owner       TEXT   NOT NULL,
    acquired_ns BIGINT NOT NULL,
    PRIMARY KEY (group_name, account_id)
);
