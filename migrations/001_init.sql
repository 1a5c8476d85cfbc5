-- 001_init.sql - initial schema of the CFA inspection service.
-- Times are INTEGER milliseconds since the Unix epoch (UTC); the store renders
-- them as RFC 3339. JSON columns hold JSON text the store does not parse.

CREATE TABLE products (
    id             TEXT PRIMARY KEY
                   CHECK (length(id) BETWEEN 1 AND 64),
    name           TEXT NOT NULL DEFAULT '',
    settings_json  TEXT NOT NULL DEFAULT '{}',
    active_version INTEGER,                      -- NULL: no active model
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Training images, content-addressed: the file lives at
-- images/<product>/<sha256[0:2]>/<sha256>.<ext> and is durable before the row.
CREATE TABLE images (
    product    TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL CHECK (length(sha256) = 64),
    ext        TEXT NOT NULL,
    width      INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (product, sha256)
) WITHOUT ROWID;

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    product          TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    state            TEXT NOT NULL
                     CHECK (state IN ('queued','running','succeeded','failed','canceled')),
    params_json      TEXT NOT NULL DEFAULT '{}',
    phase            TEXT NOT NULL DEFAULT '',
    epoch            INTEGER NOT NULL DEFAULT 0,
    epochs           INTEGER NOT NULL DEFAULT 0,
    loss             REAL,
    fraction         REAL NOT NULL DEFAULT 0,
    model_version    INTEGER,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
-- At most one queued-or-running job per product, enforced by the database.
CREATE UNIQUE INDEX jobs_one_active ON jobs(product) WHERE state IN ('queued','running');
CREATE INDEX jobs_by_state ON jobs(state, created_at);
CREATE INDEX jobs_by_product ON jobs(product, created_at);

CREATE TABLE models (
    product         TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    version         INTEGER NOT NULL CHECK (version >= 1),
    created_at      INTEGER NOT NULL,
    job_id          TEXT,
    threshold       REAL NOT NULL,
    backbone_sha256 TEXT,
    blob            BLOB NOT NULL,
    figures_json    TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (product, version)
);

-- The audit trail: no foreign key on product, rows outlive deleted products.
-- ids start with 12 hex digits of the creation time in ms, so ORDER BY id is
-- ORDER BY time.
CREATE TABLE inspections (
    id            TEXT PRIMARY KEY,
    product       TEXT NOT NULL,
    model_version INTEGER NOT NULL,
    score         REAL NOT NULL,
    threshold     REAL NOT NULL,
    decision      TEXT NOT NULL CHECK (decision IN ('OK','NG')),
    map_max       REAL NOT NULL,
    regions_json  TEXT NOT NULL DEFAULT '[]',
    timings_json  TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    has_images    INTEGER NOT NULL DEFAULT 0,
    key_id        TEXT
);
CREATE INDEX inspections_by_product ON inspections(product, id);
CREATE INDEX inspections_by_decision ON inspections(decision, id);
CREATE INDEX inspections_by_product_decision ON inspections(product, decision, id);
CREATE INDEX inspections_with_images ON inspections(id) WHERE has_images = 1;

-- Only sha256(salt || key) is kept. lookup is a short unsalted fingerprint of
-- the key used to find the candidate row before the constant-time comparison.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    role       TEXT NOT NULL CHECK (role IN ('inspect','operate','admin')),
    salt       BLOB NOT NULL,
    hash       BLOB NOT NULL,
    lookup     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_by_lookup ON api_keys(lookup);
