-- 006_events_sinks.sql - the event log, result sinks and their durable outbox
-- (docs/API.md, "Events" and "Result sinks").

-- Every change of state a plant must answer for, oldest first by seq.
-- before_json / after_json: the state before and after (JSON text or NULL).
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    product     TEXT,
    key_id      TEXT,
    request_id  TEXT,
    before_json TEXT,
    after_json  TEXT
);
CREATE INDEX events_by_kind ON events(kind, seq);
CREATE INDEX events_by_product ON events(product, seq);
CREATE INDEX events_by_at ON events(at);

-- A result sink: where deliveries of matching events go. product NULL: every
-- product. events: comma-separated names (inspection, inspection.ng, or event
-- kinds). config_json: the kind's settings (url; host, port, topic ...),
-- validated by server/sinks. secret: the webhook's HMAC key, never returned.
-- delivered / failed: counters of acknowledged deliveries and failed tries.
CREATE TABLE sinks (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('webhook','mqtt')),
    name        TEXT NOT NULL DEFAULT '',
    product     TEXT,
    events      TEXT NOT NULL,
    config_json TEXT NOT NULL DEFAULT '{}',
    secret      TEXT,
    enabled     INTEGER NOT NULL DEFAULT 1,
    delivered   INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One row per delivery owed to a sink, written in the transaction of what it
-- reports (the audit row, the event row). ref: the inspection id or the
-- event's seq. A row is deleted only once the peer acknowledged it.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    sink_id     TEXT NOT NULL REFERENCES sinks(id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    ref         TEXT NOT NULL,
    product     TEXT,
    state       TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','dead')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    last_error  TEXT
);
CREATE INDEX outbox_by_sink ON outbox(sink_id, state, seq);
