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
   "figures": {"type": "object", "description": "training figures: train_loss, bank_size, channels, train_images, holdout_images, calibration, calibration_max, calibration_mean, target_far, target_far_ng, calibration_estimate (rule, images, confidence, log_mean, log_sd, far_fit, exceedances, far_observed, far_ci95, threshold_max_rule, summary), warnings, margin, feature_seconds, epoch_seconds, total_seconds, params"}},
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
   "created_at": ts, "key_id": {"type": "string", "nullable": True, "description": "audit records only"}},
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
   "post": op("Upload good images (one image body, or multipart with one or more parts)", "operate", {**resp("201", "stored (same bytes give the same id, stored once)", listof("images", ref("Image"))), **errs("400", "401", "403", "404", "409", "413", "415", "422", "503")}, [P("ProductId")], upload_body, tags=["images"]),
   "get": op("List images", "operate", {**resp("200", "images", listof("images", ref("Image"), True)), **errs("400", "401", "403", "404")}, [P("ProductId"), P("Limit"), P("Cursor"), P("After")], tags=["images"])},
 "/v1/products/{id}/images/{image_id}": {
   "delete": op("Remove an image from the training set", "operate", {"204": {"description": "removed"}, **errs("401", "403", "404")}, [P("ProductId"), P("ImageId")], tags=["images"])},
 "/v1/products/{id}/train": {
   "post": op("Start training a new model version", "operate", {**resp("202", "job queued", obj({"job": ref("Job")}, ["job"]), headers=loc), **errs("400", "401", "403", "404", "409", "413", "415", "422")}, [P("ProductId")], jbody(ref("TrainRequest"), False), tags=["training"])},
 "/v1/jobs": {"get": op("List jobs, newest first", "operate", {**resp("200", "jobs", listof("jobs", ref("Job"), True)), **errs("400", "401", "403")},
   [{"name": "product", "in": "query", "schema": string}, {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "canceled"]}}, P("Limit"), P("Cursor"), P("After")], tags=["training"])},
 "/v1/jobs/{job_id}": {"get": op("One job", "operate", {**resp("200", "the job", ref("Job")), **errs("401", "403", "404")}, [P("JobId")], tags=["training"])},
 "/v1/jobs/{job_id}/cancel": {"post": op("Cancel a queued or running job; it ends canceled and writes no model", "operate", {**resp("202", "cancel recorded", obj({"job": ref("Job")}, ["job"])), **errs("401", "403", "404", "409")}, [P("JobId")], tags=["training"])},
 "/v1/products/{id}/models": {"get": op("Model versions, newest first", "operate", {**resp("200", "models", listof("models", ref("Model"), True)), **errs("400", "401", "403", "404")}, [P("ProductId"), P("Limit"), P("Cursor"), P("After")], tags=["models"])},
 "/v1/products/{id}/models/{version}/activate": {"post": op("Make a version the one inspections use", "operate", {**resp("200", "the product", ref("Product")), **errs("401", "403", "404")}, [P("ProductId"), P("Version")], tags=["models"])},
 "/v1/products/{id}/models/{version}/artifact": {"get": op("Extension: the serialised model (for other replicas or `cfa eval --model`)", "operate", {**resp("200", "model artefact", {"type": "string", "format": "binary"}, "application/octet-stream"), **errs("401", "403", "404")}, [P("ProductId"), P("Version")], tags=["models"])},
 "/v1/products/{id}/threshold": {"put": op("Set the thresholds of the active model (either or both; threshold_ng >= threshold, else 400 invalid_threshold_ng; threshold alone raises a lower threshold_ng to it)", "operate", {**resp("200", "the product", ref("Product")), **errs("400", "401", "403", "404", "413", "415", "422")}, [P("ProductId")], jbody(obj({"threshold": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 3.4028234663852886e38, "description": "above 0 (at or below it every part is NG) and at most FLT_MAX (scores are float32)"}, "threshold_ng": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 3.4028234663852886e38, "description": "NG from here, at least threshold"}}, **closed)), tags=["models"])},
 "/v1/products/{id}/inspect": {"post": op("Inspect one image", "inspect", {**resp("200", "the result", ref("InspectionResult")), **errs("400", "401", "404", "413", "415", "422", "503", "507")},
   [P("ProductId"), {"name": "store", "in": "query", "schema": {"type": "boolean", "default": True}, "description": "false keeps no heatmap/map files"},
    {"name": "heatmap", "in": "query", "schema": {"type": "string", "enum": ["inline", "url"]}, "description": "inline adds heatmap_png_base64"}], img_body, tags=["inspection"])},
 "/v1/inspections": {"get": op("Audit trail, newest first", "inspect", {**resp("200", "inspections", listof("inspections", ref("InspectionResult"), True)), **errs("400", "401")},
   [{"name": "product", "in": "query", "schema": string}, {"name": "decision", "in": "query", "schema": {"type": "string", "enum": ["OK", "NG"]}},
    {"name": "verdict", "in": "query", "schema": {"type": "string", "enum": ["OK", "UNSURE", "NG"]}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}}, P("Limit"), P("Cursor"), P("After")], tags=["inspection"])},
 "/v1/inspections/{id}": {"get": op("One stored result", "inspect", {**resp("200", "the result", ref("InspectionResult")), **errs("401", "404")}, [P("InspectionId")], tags=["inspection"])},
 "/v1/inspections/{id}/heatmap.png": {"get": op("Colour heatmap over the image, image resolution (drawn on the first GET from the stored image and map, then kept; 404 image_not_kept when the inspection kept no images)", "inspect", {**resp("200", "PNG", {"type": "string", "format": "binary"}, "image/png"), **errs("401", "404", "500")}, [P("InspectionId")], tags=["inspection"])},
 "/v1/inspections/{id}/map.png": {"get": op("Raw anomaly map, 16-bit grayscale PNG at image resolution: v means v / 65535 * map_max (drawn on the first GET from the stored model-geometry map, the map the decision was made on, then kept)", "inspect", {**resp("200", "PNG", {"type": "string", "format": "binary"}, "image/png"), **errs("401", "404", "500")}, [P("InspectionId")], tags=["inspection"])},
 "/v1/keys": {
   "post": op("Create an API key (the secret is returned once)", "admin", {**resp("201", "created", ref("Key"), headers=loc), **errs("400", "401", "403", "413", "415")}, body=jbody(ref("KeyCreate")), tags=["keys"]),
   "get": op("List keys (no secrets)", "admin", {**resp("200", "keys", listof("keys", ref("Key"), True)), **errs("400", "401", "403")}, [P("Limit"), P("Cursor"), P("After")], tags=["keys"])},
 "/v1/keys/{id}": {"delete": op("Revoke a key", "admin", {"204": {"description": "revoked"}, **errs("401", "403", "404")}, [P("KeyId")], tags=["keys"])},
}
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
