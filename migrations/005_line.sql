-- 005_line.sql - part identity on the audit trail and Idempotency-Key replays
-- (issue 14). Additive: old rows read NULL for every new column.

-- What a line tells about the part inspected (docs/API.md, "Part identity").
-- "order" is an SQL keyword, hence order_no.
ALTER TABLE inspections ADD COLUMN part_id  TEXT;
ALTER TABLE inspections ADD COLUMN serial   TEXT;
ALTER TABLE inspections ADD COLUMN camera   TEXT;
ALTER TABLE inspections ADD COLUMN station  TEXT;
ALTER TABLE inspections ADD COLUMN order_no TEXT;
-- An MES asks "what became of part X" and "what did camera/station Y see":
-- (column, id) serves the filter with the newest-first order and cursor.
CREATE INDEX inspections_by_part_id ON inspections(part_id, id) WHERE part_id IS NOT NULL;
CREATE INDEX inspections_by_serial  ON inspections(serial, id)  WHERE serial IS NOT NULL;
CREATE INDEX inspections_by_camera  ON inspections(camera, id)  WHERE camera IS NOT NULL;
CREATE INDEX inspections_by_station ON inspections(station, id) WHERE station IS NOT NULL;
CREATE INDEX inspections_by_order   ON inspections(order_no, id) WHERE order_no IS NOT NULL;

-- The first answer to a request sent with an Idempotency-Key, per API key and
-- route. request_hash is SHA-256 of method, path, body and part identity: the
-- same key with another request is refused. An inspection's entry is written
-- in the transaction of its audit row and names it (ref); the answer is made
-- again from that row. Other routes keep the answer itself (response).
CREATE TABLE idempotency (
    key_id       TEXT NOT NULL,       -- API key id ('' for none)
    route        TEXT NOT NULL,       -- route pattern, e.g. POST /v1/products/{id}/inspect
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL CHECK (length(request_hash) = 64),
    status       INTEGER NOT NULL,
    ref          TEXT,                -- inspection id (inspect)
    response     TEXT,                -- the JSON answer (other routes)
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (key_id, route, idem_key)
) WITHOUT ROWID;
CREATE INDEX idempotency_by_time ON idempotency(created_at);
