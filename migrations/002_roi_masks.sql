-- ROI masks (issue 13): a product's current inspection mask. The PNG lives at
-- <data_dir>/masks/<product>/<sha256>.png, written durably before this row;
-- a model names the mask it was trained with (its figures' mask_sha256), so a
-- replaced or deleted mask's file is kept for the models that still use it.
CREATE TABLE product_masks (
    product    TEXT PRIMARY KEY REFERENCES products(id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    width      INTEGER NOT NULL CHECK (width >= 1),
    height     INTEGER NOT NULL CHECK (height >= 1),
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
