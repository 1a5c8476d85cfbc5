-- 003_reserved_s7_line.sql - PLACEHOLDER on branch s7-line only: the store requires
-- contiguous numbers and this branch's migration is 005 (assigned). The merger
-- deletes this file when the branches holding 002-004 are merged.
SELECT 1;
