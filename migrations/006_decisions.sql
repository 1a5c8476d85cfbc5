-- Three-way decisions (OK / UNSURE / NG): a second, stricter threshold per
-- model (NG from threshold_ng; between threshold and threshold_ng the part is
-- UNSURE), and the verdict and that threshold in the audit trail.
-- A model without one (NULL) has no UNSURE band: threshold_ng = threshold.
ALTER TABLE models ADD COLUMN threshold_ng REAL;
ALTER TABLE inspections ADD COLUMN threshold_ng REAL;
ALTER TABLE inspections ADD COLUMN verdict TEXT CHECK (verdict IN ('OK', 'UNSURE', 'NG'));
-- rows written before had two thresholds that were one
UPDATE inspections SET verdict = decision, threshold_ng = threshold WHERE verdict IS NULL;
CREATE INDEX inspections_by_verdict ON inspections(verdict, id);
CREATE INDEX inspections_by_product_verdict ON inspections(product, verdict, id);
