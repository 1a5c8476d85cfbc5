-- 004_feedback.sql - operator labels on inspections, and model versions that
-- are never reused for a product id.

-- Operator feedback on an inspection. A new label replaces the old one (the
-- newest row of an inspection is its label); the older rows stay as history.
-- product and decision are copied from the audit row so that the summary's
-- counts are one indexed query.
CREATE TABLE inspection_labels (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    inspection_id TEXT NOT NULL,
    product       TEXT NOT NULL,
    decision      TEXT NOT NULL,
    label         TEXT NOT NULL CHECK (label IN ('false_alarm','defect','ok')),
    note          TEXT NOT NULL DEFAULT '',
    key_id        TEXT,
    created_at    INTEGER NOT NULL,
    image_id      TEXT            -- the training image it added, if any
);
CREATE INDEX inspection_labels_by_inspection ON inspection_labels(inspection_id, seq);
CREATE INDEX inspection_labels_by_product ON inspection_labels(product, inspection_id, seq);

-- The last model version given out per product id. It outlives the product
-- (no foreign key): a product deleted and created again continues its
-- numbering, so (product, version) in the audit trail names one model.
CREATE TABLE model_versions (
    product      TEXT PRIMARY KEY,
    last_version INTEGER NOT NULL
);
INSERT INTO model_versions(product, last_version)
    SELECT product, max(version) FROM models GROUP BY product;
