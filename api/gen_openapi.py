#!/usr/bin/python3
"""Writes api/openapi.json (the OpenAPI 3 document of API v1, served at
GET /v1/openapi.json and compiled into the binary). Edit here, then run:
    cmake --build build --target openapi_json
which is
    build/api/gen_settings_schema S.json
    python3 api/gen_openapi.py --settings S.json --out api/openapi.json
The training settings' schemas (TrainingSettings, TrainRequest) are not
written here: they come from the settings table (server/settings/include/
settings.def) through gen_settings_schema. --check FILE compares instead of
printing (lint.openapi: the committed file must be what this writes).
Standard library only."""
import argparse
import json
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--settings", required=True, help="output of gen_settings_schema")
ap.add_argument("--out", metavar="FILE", help="write here instead of to stdout")
ap.add_argument("--check", metavar="FILE", help="exit 1 unless FILE is what would be written")
args = ap.parse_args()
with open(args.settings) as f:
    settings = json.load(f)
ref = lambda n: {"$ref": "#/components/schemas/" + n}
def err(desc): return {"description": desc, "content": {"application/json": {"schema": ref("Error")}}}
E = {s: err(d) for s, d in {
 "400": "malformed request (bad JSON, bad parameter, malformed multipart)",
 "401": "no or unknown API key", "403": "the key's role is too low", "404": "unknown id",
 "409": "conflict (duplicate product id, a job already queued/running, job already finished, the product's image limit reached)",
 "413": "body over the byte limit (JSON routes: 64 KiB for products and train, 4 KiB for threshold and keys; images: --max-body-mb), or too many parts in one upload", "415": "unsupported media type",
 "422": "valid but unusable (image corrupt, too small, or over the pixel/side limits read from its header; product without a model; too few images)",
 "500": "internal or storage error (e.g. an inspection's stored files are damaged); the body says which",
 "503": "overloaded, out of memory (host or GPU), or not ready (Retry-After)",
 "507": "the disk is full: nothing was recorded (storage_full)"}.items()}
def resp(code, desc, schema=None, ctype="application/json", headers=None):
    r = {"description": desc}
    if schema is not None: r["content"] = {ctype: {"schema": schema}}
    if headers: r["headers"] = headers
    return {code: r}
def errs(*codes): return {c: {"$ref": "#/components/responses/E" + c} for c in codes}
def op(summary, role, responses, params=None, body=None, tags=None):
    o = {"summary": summary, "responses": responses}
    if role: o["description"] = "Role: `%s` or higher." % role
    else: o["security"] = []
    if params: o["parameters"] = params
    if body: o["requestBody"] = body
    if tags: o["tags"] = tags
    return o
P = lambda n: {"$ref": "#/components/parameters/" + n}
jbody = lambda s, req=True: {"required": req, "content": {"application/json": {"schema": s}}}
obj = lambda props, req=None, **kw: dict({"type": "object", "properties": props}, **({"required": req} if req else {}), **kw)
nextc = {"type": "string", "nullable": True, "description": "opaque cursor of the next page; null on the last"}
listof = lambda key, item, cursor=False: obj(dict({key: {"type": "array", "items": item}}, **({"next": dict(nextc, description="older name of next_cursor (same value)"), "next_cursor": nextc} if cursor else {})), [key] + (["next", "next_cursor"] if cursor else []))
name_s = {"type": "string", "maxLength": 256, "description": "at most 256 bytes of UTF-8"}
closed = {"additionalProperties": False}
num = {"type": "number"}; integer = {"type": "integer"}; string = {"type": "string"}
ts = {"type": "string", "format": "date-time", "nullable": True}
schemas = dict(settings, **{
 "Error": obj({"error": obj({"code": {"type": "string", "description": "snake_case reason"}, "message": string}, ["code", "message"])}, ["error"]),
 "ProductCreate": obj({"id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}, "name": name_s, "settings": ref("TrainingSettings")}, ["id"], **closed),
 "ProductPatch": obj({"name": name_s, "settings": ref("TrainingSettings")}, **closed),
 "Product": obj({"id": string, "name": string, "settings": ref("TrainingSettings"),
   "active_version": {"type": "integer", "nullable": True}, "threshold": {"type": "number", "nullable": True},
   "threshold_ng": {"type": "number", "nullable": True, "description": "NG from here (>= threshold); UNSURE between the two"},
   "image_count": integer, "created_at": ts, "updated_at": ts}, ["id", "name", "settings", "active_version", "threshold", "image_count"]),
 "Image": obj({"id": {"type": "string", "description": "sha256 hex of the bytes"}, "width": integer, "height": integer,
   "created": {"type": "boolean", "description": "false when the same bytes were already stored"},
   "bytes": integer, "format": {"type": "string", "enum": ["jpg", "png"]}, "created_at": ts}, ["id", "width", "height"]),
 "Job": obj({"id": string, "product": string, "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "canceled"]},
   "params": ref("TrainRequest"),
   "progress": obj({"phase": {"type": "string", "nullable": True, "description": "features, bank, epochs, calibration, done"}, "epoch": integer, "epochs": integer,
                    "loss": {"type": "number", "nullable": True}, "fraction": num}),
   "model_version": {"type": "integer", "nullable": True}, "error": {"type": "string", "nullable": True},
   "cancel_requested": {"type": "boolean"}, "created_at": ts, "started_at": ts, "finished_at": ts,
   "result": {"type": "object", "nullable": True, "description": "GET /v1/jobs/{id} of a succeeded job: model_version, threshold, threshold_ng, calibration_estimate, warnings (from the model's figures)"}},
   ["id", "product", "state", "progress", "model_version", "error", "created_at", "started_at", "finished_at"]),
 "Model": obj({"product": string, "version": integer, "created_at": ts, "job_id": {"type": "string", "nullable": True},
   "threshold": num, "threshold_ng": num, "active": {"type": "boolean"}, "backbone_sha256": {"type": "string", "nullable": True},
   "figures": {"type": "object", "description": "training figures: train_loss, bank_size, channels, train_images, holdout_images, calibration, calibration_max, calibration_mean, calibration_scores (the held-out scores the threshold was calibrated on), target_far, target_far_ng, calibration_estimate (rule, images, confidence, log_mean, log_sd, far_fit, exceedances, far_observed, far_ci95, threshold_max_rule, summary), warnings, margin, feature_seconds, epoch_seconds, total_seconds, params"}},
   ["version", "created_at", "job_id", "threshold", "active", "figures"]),
 "Region": obj({"x": integer, "y": integer, "width": integer, "height": integer, "area": integer, "score": num}, ["x", "y", "width", "height", "area", "score"]),
 "InspectionResult": obj({"inspection_id": string, "product": string, "model_version": integer,
   "score": {"type": "number", "description": "image anomaly score (maximum of the anomaly map)"},
   "threshold": num, "decision": {"type": "string", "enum": ["OK", "NG"], "description": "NG when score >= threshold (two-valued: UNSURE counts as NG)"},
   "threshold_ng": {"type": "number", "description": "NG threshold of the verdict (>= threshold)"},
   "verdict": {"type": "string", "enum": ["OK", "UNSURE", "NG"], "description": "OK below threshold, UNSURE from threshold to below threshold_ng, NG from threshold_ng"},
   "map_max": {"type": "number", "description": "maximum of the map at image resolution; scale of map.png"},
   "regions": {"type": "array", "items": ref("Region")},
   "heatmap_url": {"type": "string", "nullable": True}, "map_url": {"type": "string", "nullable": True},
   "timings_ms": obj({"decode": num, "queue": num, "model": num, "encode": num, "total": num}, ["decode", "queue", "model", "total"]),
   "heatmap_png_base64": {"type": "string", "description": "only with ?heatmap=inline"},
   "created_at": ts, "key_id": {"type": "string", "nullable": True, "description": "audit records only"},
   **{f: {"type": "string", "nullable": True, "maxLength": 128, "description": "part identity as sent (null: not sent)"} for f in ("part_id", "serial", "camera", "station", "order")}},
   ["inspection_id", "product", "model_version", "score", "threshold", "decision", "map_max", "regions", "heatmap_url", "map_url", "timings_ms"]),
 "KeyCreate": obj({"name": name_s, "role": {"type": "string", "enum": ["inspect", "operate", "admin"]}}, ["role"], **closed),
 "Key": obj({"id": string, "name": string, "role": {"type": "string", "enum": ["inspect", "operate", "admin"]},
   "created_at": ts, "revoked_at": ts, "key": {"type": "string", "description": "the secret; only in the creation response"}}, ["id", "name", "role", "created_at"]),
})
params = {
 "ProductId": {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}},
 "ImageId": {"name": "image_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
 "JobId": {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}},
 "InspectionId": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
 "KeyId": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
 "Version": {"name": "version", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}},
 "Limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 100}, "description": "page size, capped at 1000"},
 "After": {"name": "after", "in": "query", "schema": {"type": "string"}, "description": "older name of cursor"},
 "Cursor": {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 95}, "description": "opaque: the `next_cursor` of the previous page, unchanged; 400 invalid_cursor otherwise"},
}
loc = {"Location": {"schema": {"type": "string"}}}
img_body = {"required": True, "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                                          "image/png": {"schema": {"type": "string", "format": "binary"}}}}
upload_body = {"required": True, "content": dict(img_body["content"], **{"multipart/form-data": {"schema": {"type": "object", "additionalProperties": {"type": "string", "format": "binary"}, "description": "one or more image parts (image/jpeg or image/png)"}}})}
inspect_body = {"required": True, "content": dict(img_body["content"], **{"multipart/form-data": {"schema": obj({"image": {"type": "string", "format": "binary", "description": "the image (image/jpeg or image/png), any part name but meta"}, "meta": obj({f: {"type": "string", "minLength": 1, "maxLength": 128} for f in ("part_id", "serial", "camera", "station", "order")}, description="JSON, at most 4 kB: part identity", **closed)})}})}
part_q = [{"name": f, "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 128}, "description": "part identity (1-128 bytes of UTF-8, no control characters)"} for f in ("part_id", "serial", "camera", "station", "order")]
part_h = [{"name": h, "in": "header", "schema": {"type": "string", "maxLength": 128}, "description": "part identity, as the query parameter of the same meaning"} for h in ("X-Part-Id", "X-Serial", "X-Camera", "X-Station", "X-Order")]
idem_h = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "minLength": 1, "maxLength": 255}, "description": "a repeat within --idempotency-window gets the first answer (Idempotent-Replayed: true); another request under the key is 409 idempotency_key_reused"}
audit_q = [{"name": "product", "in": "query", "schema": string}, {"name": "decision", "in": "query", "schema": {"type": "string", "enum": ["OK", "NG"]}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}}, {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "created before"},
    {"name": "model_version", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "verdict", "in": "query", "schema": {"type": "string", "enum": ["OK", "UNSURE", "NG"]}}] + part_q
text = lambda d: {"200": {"description": d, "content": {"text/plain": {"schema": {"type": "string"}}}}}
paths = {
 "/healthz": {"get": op("Liveness", None, resp("200", "the process runs", obj({"status": {"type": "string", "enum": ["ok"]}})), tags=["health"])},
 "/readyz": {"get": op("Readiness: database, backbone and workers up", None, {**resp("200", "ready", obj({"status": string})), **errs("503")}, tags=["health"])},
 "/metrics": {"get": op("Prometheus metrics", None, {**text("Prometheus text format 0.0.4: cfa_http_requests_total, cfa_http_request_duration_seconds, cfa_inference_batch_size, cfa_inference_seconds, cfa_queue_depth, cfa_queue_rejected_total, cfa_training_jobs, cfa_training_finished_total, cfa_images_stored, cfa_models_loaded"), **errs("401")}, tags=["health"])},
 "/v1/openapi.json": {"get": op("This document", None, resp("200", "OpenAPI 3 document", {"type": "object"}), tags=["health"])},
 "/v1/info": {"get": op("Version, backbone, devices, limits", "inspect", {**resp("200", "server information", {"type": "object"}), **errs("401")}, tags=["health"])},
 "/v1/products": {
   "post": op("Create a product", "operate", {**resp("201", "created", ref("Product"), headers=loc), **errs("400", "401", "403", "409", "413", "415")}, body=jbody(ref("ProductCreate")), tags=["products"]),
   "get": op("List products", "inspect", {**resp("200", "products", listof("products", ref("Product"), True)), **errs("400", "401")}, [P("Limit"), P("Cursor"), P("After")], tags=["products"])},
 "/v1/products/{id}": {
   "get": op("One product", "inspect", {**resp("200", "the product", ref("Product")), **errs("401", "404")}, [P("ProductId")], tags=["products"]),
   "patch": op("Change name and/or settings", "operate", {**resp("200", "the product", ref("Product")), **errs("400", "401", "403", "404", "413", "415")}, [P("ProductId")], jbody(ref("ProductPatch")), tags=["products"]),
   "delete": op("Delete a product with its images, models and finished jobs (inspections stay)", "operate", {"204": {"description": "deleted"}, **errs("401", "403", "404", "409")}, [P("ProductId")], tags=["products"])},
 "/v1/products/{id}/images": {
   "post": op("Upload good images (one image body, or multipart with one or more parts)", "operate", {**resp("201", "stored (same bytes give the same id, stored once)", listof("images", ref("Image"))), **errs("400", "401", "403", "404", "409", "413", "415", "422", "503")}, [P("ProductId"), idem_h], upload_body, tags=["images"]),
   "get": op("List images", "operate", {**resp("200", "images", listof("images", ref("Image"), True)), **errs("400", "401", "403", "404")}, [P("ProductId"), P("Limit"), P("Cursor"), P("After")], tags=["images"])},
 "/v1/products/{id}/images/{image_id}": {
   "delete": op("Remove an image from the training set", "operate", {"204": {"description": "removed"}, **errs("401", "403", "404")}, [P("ProductId"), P("ImageId")], tags=["images"])},
 "/v1/products/{id}/train": {
   "post": op("Start training a new model version", "operate", {**resp("202", "job queued", obj({"job": ref("Job")}, ["job"]), headers=loc), **errs("400", "401", "403", "404", "409", "413", "415", "422")}, [P("ProductId"), idem_h], jbody(ref("TrainRequest"), False), tags=["training"])},
 "/v1/jobs": {"get": op("List jobs, newest first", "operate", {**resp("200", "jobs", listof("jobs", ref("Job"), True)), **errs("400", "401", "403")},
   [{"name": "product", "in": "query", "schema": string}, {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "canceled"]}}, P("Limit"), P("Cursor"), P("After")], tags=["training"])},
 "/v1/jobs/{job_id}": {"get": op("One job", "operate", {**resp("200", "the job", ref("Job")), **errs("401", "403", "404")}, [P("JobId")], tags=["training"])},
 "/v1/jobs/{job_id}/cancel": {"post": op("Cancel a queued or running job; it ends canceled and writes no model", "operate", {**resp("202", "cancel recorded", obj({"job": ref("Job")}, ["job"])), **errs("401", "403", "404", "409")}, [P("JobId")], tags=["training"])},
 "/v1/products/{id}/models": {"get": op("Model versions, newest first", "operate", {**resp("200", "models", listof("models", ref("Model"), True)), **errs("400", "401", "403", "404")}, [P("ProductId"), P("Limit"), P("Cursor"), P("After")], tags=["models"])},
 "/v1/products/{id}/models/{version}/activate": {"post": op("Make a version the one inspections use", "operate", {**resp("200", "the product", ref("Product")), **errs("401", "403", "404")}, [P("ProductId"), P("Version")], tags=["models"])},
 "/v1/products/{id}/models/{version}/artifact": {"get": op("Extension: the serialised model (for other replicas or `cfa eval --model`)", "operate", {**resp("200", "model artefact", {"type": "string", "format": "binary"}, "application/octet-stream"), **errs("401", "403", "404")}, [P("ProductId"), P("Version")], tags=["models"])},
 "/v1/products/{id}/threshold": {"put": op("Set the thresholds of the active model (either or both; threshold_ng >= threshold, else 400 invalid_threshold_ng; threshold alone raises a lower threshold_ng to it)", "operate", {**resp("200", "the product", ref("Product")), **errs("400", "401", "403", "404", "413", "415", "422")}, [P("ProductId")], jbody(obj({"threshold": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 3.4028234663852886e38, "description": "above 0 (at or below it every part is NG) and at most FLT_MAX (scores are float32)"}, "threshold_ng": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 3.4028234663852886e38, "description": "NG from here, at least threshold"}}, **closed)), tags=["models"])},
 "/v1/products/{id}/mask": {
   "put": op("Set the product's ROI mask (issue 13): a PNG, non-zero = inspected, scaled to each image; the next training uses it and its model keeps it", "operate", {**resp("200", "the mask", obj({"sha256": string, "width": integer, "height": integer, "bytes": integer, "created_at": ts, "inspected_fraction": {"type": "number"}})), **errs("400", "401", "403", "404", "413", "415", "422", "503")}, [P("ProductId")], {"required": True, "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}, tags=["products"]),
   "get": op("The product's ROI mask as uploaded", "operate", {**resp("200", "the mask PNG", {"type": "string", "format": "binary"}, "image/png"), **errs("401", "403", "404")}, [P("ProductId")], tags=["products"]),
   "delete": op("Remove the product's ROI mask (models trained with it keep it)", "operate", {"204": {"description": "removed"}, **errs("401", "403", "404")}, [P("ProductId")], tags=["products"])},
 "/v1/products/{id}/inspect": {"post": op("Inspect one image", "inspect", {**resp("200", "the result", ref("InspectionResult")), **errs("400", "401", "404", "409", "413", "415", "422", "503", "507")},
   [P("ProductId"), {"name": "store", "in": "query", "schema": {"type": "boolean", "default": True}, "description": "false keeps no heatmap/map files"},
    {"name": "heatmap", "in": "query", "schema": {"type": "string", "enum": ["inline", "url"]}, "description": "inline adds heatmap_png_base64"}] + part_q + part_h + [idem_h], inspect_body, tags=["inspection"])},
 "/v1/inspections": {"get": op("Audit trail, newest first", "inspect", {**resp("200", "inspections", listof("inspections", ref("InspectionResult"), True)), **errs("400", "401")},
   audit_q + [P("Limit"), P("Cursor"), P("After")], tags=["inspection"])},
 "/v1/inspections/export": {"get": op("The audit trail streamed (chunked), newest first, with the list's filters and no page cap", "inspect", {"200": {"description": "CSV (RFC 4180, a header row) or NDJSON (one InspectionResult a line)", "content": {"text/csv": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}}}}, **errs("400", "401")},
   [{"name": "format", "in": "query", "required": True, "schema": {"type": "string", "enum": ["csv", "ndjson"]}}] + audit_q + [P("Cursor"), P("After")], tags=["inspection"])},
 "/v1/inspections/{id}": {"get": op("One stored result", "inspect", {**resp("200", "the result", ref("InspectionResult")), **errs("401", "404")}, [P("InspectionId")], tags=["inspection"])},
 "/v1/inspections/{id}/heatmap.png": {"get": op("Colour heatmap over the image, image resolution (drawn on the first GET from the stored image and map, then kept; 404 image_not_kept when the inspection kept no images)", "inspect", {**resp("200", "PNG", {"type": "string", "format": "binary"}, "image/png"), **errs("401", "404", "500")}, [P("InspectionId")], tags=["inspection"])},
 "/v1/inspections/{id}/map.png": {"get": op("Raw anomaly map, 16-bit grayscale PNG at image resolution: v means v / 65535 * map_max (drawn on the first GET from the stored model-geometry map, the map the decision was made on, then kept)", "inspect", {**resp("200", "PNG", {"type": "string", "format": "binary"}, "image/png"), **errs("401", "404", "500")}, [P("InspectionId")], tags=["inspection"])},
 "/v1/jobs/{job_id}/events": {"get": op("The job's progress as Server-Sent Events: `event: progress` with the job (as GET /v1/jobs/{job_id}) at each change, `event: end` with the finished job, then the stream closes; a comment every 15 s while nothing changes", "operate", {**resp("200", "text/event-stream", {"type": "string"}, "text/event-stream"), **errs("401", "403", "404")}, [P("JobId")], tags=["training"])},
 "/v1/inspections/{id}/image": {"get": op("The image as it was inspected (JPEG or PNG, as sent; 404 image_not_kept when the inspection kept no images)", "inspect", {**resp("200", "the image", {"type": "string", "format": "binary"}, "image/jpeg"), **errs("401", "404", "500")}, [P("InspectionId")], tags=["inspection"])},
 "/v1/products/{id}/images/{image_id}/thumbnail": {"get": op("A training image at most 160 px on its longest side (PNG; ETag and Cache-Control: the id is the hash of the bytes, so it never changes; kept in memory)", "operate", {**resp("200", "PNG", {"type": "string", "format": "binary"}, "image/png"), "304": {"description": "If-None-Match names the ETag"}, **errs("401", "403", "404", "422", "503")}, [P("ProductId"), P("ImageId")], tags=["images"])},
 "/v1/keys": {
   "post": op("Create an API key (the secret is returned once)", "admin", {**resp("201", "created", ref("Key"), headers=loc), **errs("400", "401", "403", "413", "415")}, body=jbody(ref("KeyCreate")), tags=["keys"]),
   "get": op("List keys (no secrets)", "admin", {**resp("200", "keys", listof("keys", ref("Key"), True)), **errs("400", "401", "403")}, [P("Limit"), P("Cursor"), P("After")], tags=["keys"])},
 "/v1/keys/{id}": {"delete": op("Revoke a key", "admin", {"204": {"description": "revoked"}, **errs("401", "403", "404")}, [P("KeyId")], tags=["keys"])},
}
# issue 16: model bundles (docs/API.md, "Model bundles")
bundle_bin = {"type": "string", "format": "binary", "description": "a model bundle (docs/API.md, Model bundles)"}
paths["/v1/products/{id}/models/{version}/bundle"] = {"get": op("A version as one file to import elsewhere: model, product settings, threshold(s), backbone hash, figures, SHA-256, HMAC signature with --bundle-key-file", "operate", {**resp("200", "the bundle", bundle_bin, "application/vnd.cfa.bundle"), **errs("401", "403", "404")}, [P("ProductId"), P("Version")], tags=["models"])}
paths["/v1/products/{id}/models"]["post"] = op("Import a bundle as the product's next version (the product is created from the bundle when absent); 400 invalid_bundle, 403 bundle_signature_invalid / bundle_unsigned, 409 backbone_mismatch / read_only_replica, 422 bundle_checksum_mismatch / unsupported_bundle_version", "operate", {**resp("201", "the imported version (its figures carry origin)", ref("Model"), headers=loc), **errs("400", "401", "403", "404", "409", "413", "415", "422", "503")},
  [P("ProductId"), {"name": "activate", "in": "query", "schema": {"type": "boolean", "default": False}, "description": "make the imported version the active one"}],
  {"required": True, "content": {c: {"schema": bundle_bin} for c in ("application/vnd.cfa.bundle", "application/octet-stream")}}, tags=["models"])
# ---- the event log and result sinks (docs/API.md, "Events", "Result sinks")
event_kinds = ["product.created", "product.changed", "product.deleted", "image.added", "image.removed",
               "training.started", "training.finished", "model.activated", "threshold.set",
               "key.created", "key.revoked", "sink.created", "sink.changed", "sink.deleted",
               "model.imported", "model.deleted", "mask.set", "mask.removed"]
sink_events = {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["inspection", "inspection.ng"] + event_kinds},
               "description": "inspection (every one), inspection.ng (NG only), or event-log kinds"}
sink_common = {"name": name_s, "product": {"type": "string", "nullable": True, "description": "null: every product"},
               "events": sink_events, "enabled": {"type": "boolean", "default": True}}
sink_kind_props = {"kind": {"type": "string", "enum": ["webhook", "mqtt"]},
  "url": {"type": "string", "maxLength": 2048, "description": "webhook: http:// or https://"},
  "secret": {"type": "string", "nullable": True, "maxLength": 256, "writeOnly": True, "description": "webhook: HMAC-SHA256 key; X-CFA-Signature: sha256=<hex> over the body. Never returned; null removes it"},
  "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 120000, "description": "webhook: one request"},
  "host": {"type": "string", "maxLength": 255, "description": "mqtt: broker"}, "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 1883},
  "topic": {"type": "string", "maxLength": 256, "description": "mqtt: template with {product}, {decision}, {event}; no + or #"},
  "qos": {"type": "integer", "enum": [1]}}
schemas.update({
 "Event": obj({"seq": integer, "at": ts, "kind": {"type": "string", "enum": event_kinds},
   "product": {"type": "string", "nullable": True}, "key_id": {"type": "string", "nullable": True},
   "request_id": {"type": "string", "nullable": True}, "before": {"nullable": True, "description": "the state before (JSON), null when none"},
   "after": {"nullable": True, "description": "the state after (JSON), null when none"}},
   ["seq", "at", "kind", "product", "key_id", "request_id", "before", "after"]),
 "SinkCreate": obj(dict(sink_common, **sink_kind_props), ["kind", "events"], **closed),
 "SinkPatch": obj(dict(sink_common, **sink_kind_props), **closed),
 "Sink": obj(dict(sink_common, **{k: v for k, v in sink_kind_props.items() if k != "secret"}, **{"id": string,
   "has_secret": {"type": "boolean", "description": "webhook: a secret is set"},
   "deliveries": obj({"queued": integer, "delivered": integer, "failed": integer, "dead": integer, "oldest_age_s": num},
                     ["queued", "delivered", "failed", "dead", "oldest_age_s"]),
   "created_at": ts, "updated_at": ts}), ["id", "kind", "name", "product", "events", "enabled", "deliveries"]),
})
params.update({"SinkId": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}})
paths.update({
 "/v1/events": {"get": op("The event log, oldest first", "operate", {**resp("200", "events", listof("events", ref("Event"), True)), **errs("400", "401", "403")},
   [{"name": "kind", "in": "query", "schema": {"type": "string", "enum": event_kinds}}, {"name": "product", "in": "query", "schema": string},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "at or after"},
    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "before"},
    P("Limit"), P("Cursor"), P("After")], tags=["events"])},
 "/v1/sinks": {
   "post": op("Create a result sink (webhook or MQTT)", "admin", {**resp("201", "created", ref("Sink"), headers=loc), **errs("400", "401", "403", "413", "415")}, body=jbody(ref("SinkCreate")), tags=["sinks"]),
   "get": op("List sinks with their delivery figures", "admin", {**resp("200", "sinks", listof("sinks", ref("Sink"), True)), **errs("400", "401", "403")}, [P("Limit"), P("Cursor"), P("After")], tags=["sinks"])},
 "/v1/sinks/{id}": {
   "get": op("One sink", "admin", {**resp("200", "the sink", ref("Sink")), **errs("401", "403", "404")}, [P("SinkId")], tags=["sinks"]),
   "patch": op("Change a sink (not its kind)", "admin", {**resp("200", "the sink", ref("Sink")), **errs("400", "401", "403", "404", "413", "415")}, [P("SinkId")], jbody(ref("SinkPatch")), tags=["sinks"]),
   "delete": op("Delete a sink and its queued deliveries", "admin", {"204": {"description": "deleted"}, **errs("401", "403", "404")}, [P("SinkId")], tags=["sinks"])},
 "/v1/sinks/{id}/redeliver": {"post": op("Queue the sink's dead deliveries again", "admin", {**resp("202", "requeued", obj({"requeued": integer}, ["requeued"])), **errs("401", "403", "404")}, [P("SinkId")], tags=["sinks"])},
})
# ---- feedback, drift, region outlines, model delete (docs/API.md) ----
nullnum = {"type": "number", "nullable": True}
schemas.update({
 "Label": obj({"label": {"type": "string", "enum": ["false_alarm", "defect", "ok"]}, "note": string,
   "key_id": {"type": "string", "nullable": True}, "at": ts,
   "training_image_id": {"type": "string", "description": "the training image add_to_training added"}}, ["label", "note", "key_id", "at"]),
 "LabelRequest": obj({"label": {"type": "string", "enum": ["false_alarm", "defect", "ok"]},
   "note": {"type": "string", "maxLength": 1024, "description": "at most 1024 bytes"},
   "add_to_training": {"type": "boolean", "default": False, "description": "false_alarm/ok only, operate key: adds the inspection's stored image to the product's training images"}}, ["label"], **closed),
 "Feedback": obj({k: integer for k in ["labelled_ng", "confirmed_defects", "false_alarms", "labelled_good", "labelled_defects", "missed_defects"]} | {
   "precision": dict(nullnum, description="confirmed_defects / labelled_ng"), "far": dict(nullnum, description="false_alarms / labelled_good"),
   "miss_rate": dict(nullnum, description="missed_defects / labelled_defects")}),
 "Drift": obj({"model_version": integer, "available": {"type": "boolean"}, "statistic": {"type": "string", "enum": ["ks_two_sample"]},
   "window": integer, "n_window": integer, "n_reference": integer, "reference": {"type": "string", "nullable": True, "description": "holdout or train"},
   "ks_d": nullnum, "p_value": nullnum, "median_shift": nullnum, "window_median": nullnum, "reference_median": nullnum,
   "flag": {"type": "boolean"}, "bound": obj({"p_below": num, "min_window": integer, "min_reference": integer})},
   ["model_version", "available", "n_window", "n_reference", "ks_d", "p_value", "flag"]),
})
schemas["Region"]["properties"]["polygon"] = {"type": "array", "nullable": True, "maxItems": 32, "items": {"type": "array", "items": integer, "minItems": 2, "maxItems": 2}, "description": "outer outline, [x, y] image pixels, at most 32 points"}
schemas["Product"]["properties"].update({"feedback": ref("Feedback"), "drift": ref("Drift")})
schemas["InspectionResult"]["properties"]["label"] = dict(ref("Label"), description="GET /v1/inspections/{id}: the newest label, or null")
paths.update({
 "/v1/inspections/{id}/label": {"post": op("Label an inspection (false_alarm, defect, ok); a new label replaces the old, the history is kept", "inspect", {**resp("200", "the label", ref("Label")), **errs("400", "401", "403", "404", "409", "413", "415", "422")}, [P("InspectionId")], jbody(ref("LabelRequest")), tags=["inspection"])},
 "/v1/products/{id}/drift": {"get": op("Drift: the active model's newest inspection scores against its calibration scores", "inspect", {**resp("200", "the drift", ref("Drift")), **errs("401", "404")}, [P("ProductId")], tags=["products"])},
 "/v1/products/{id}/models/{version}": {"delete": op("Delete a model version that is not active (its number is never reused)", "operate", {"204": {"description": "deleted"}, **errs("401", "403", "404", "409")}, [P("ProductId"), P("Version")], tags=["models"])},
})
doc = {"openapi": "3.0.3",
 "info": {"title": "cfa-server", "version": "1",
          "description": "CFA anomaly inspection for factory lines (docs/API.md, version 1). Errors: `{\"error\": {\"code\", \"message\"}}` with the matching status. Any request may be refused before routing with 400 `invalid_path`, `invalid_query`, `invalid_header` or `ambiguous_length` (docs/API.md, strict HTTP). Roles: inspect < operate < admin."},
 "servers": [{"url": "/"}],
 "security": [{"bearer": []}],
 "tags": [{"name": t} for t in ["health", "products", "images", "training", "models", "inspection", "keys"]],
 "paths": paths,
 "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"}},
   "schemas": schemas, "parameters": params,
   "responses": {"E" + k: v for k, v in E.items()}}}
doc["tags"] += [{"name": "events"}, {"name": "sinks"}]
text = json.dumps(doc, indent=1) + "\n"
if args.check:
    with open(args.check) as f:
        if json.load(f) != doc:
            sys.exit("%s differs from what api/gen_openapi.py and the settings table write; "
                     "regenerate it: cmake --build build --target openapi_json" % args.check)
elif args.out:
    with open(args.out, "w") as f:
        f.write(text)
else:
    sys.stdout.write(text)
