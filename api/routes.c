/* routes.c - the route table of API v1: method, path pattern, metrics label,
 * role, body kind, handler. Handlers live in one file per resource. */
#include "api_int.h"

const api_route api_routes[] = {
    {"GET", "/healthz", "/healthz", STORE_ROLE_NONE, 0, h_healthz, 0},
    {"GET", "/readyz", "/readyz", STORE_ROLE_NONE, 0, h_readyz, 0},
    {"GET", "/metrics", "/metrics", STORE_ROLE_NONE, 0, h_metrics, 0},
    {"GET", "/v1/openapi.json", "/v1/openapi.json", STORE_ROLE_NONE, 0, h_openapi, 0},
    {"GET", "/v1/info", "/v1/info", STORE_ROLE_INSPECT, 0, h_info, 0},
    {"POST", "/v1/products", "/v1/products", STORE_ROLE_OPERATE, 1, h_product_create, 0},
    {"GET", "/v1/products", "/v1/products", STORE_ROLE_INSPECT, 0, h_product_list, 0},
    {"GET", "/v1/products/{}", "/v1/products/{id}", STORE_ROLE_INSPECT, 0, h_product_get, 0},
    {"PATCH", "/v1/products/{}", "/v1/products/{id}", STORE_ROLE_OPERATE, 1, h_product_patch, 0},
    {"DELETE", "/v1/products/{}", "/v1/products/{id}", STORE_ROLE_OPERATE, 0, h_product_delete, 0},
    {"POST", "/v1/products/{}/images", "/v1/products/{id}/images", STORE_ROLE_OPERATE, 2, h_image_upload, 0},
    {"GET", "/v1/products/{}/images", "/v1/products/{id}/images", STORE_ROLE_OPERATE, 0, h_image_list, 0},
    {"DELETE", "/v1/products/{}/images/{}", "/v1/products/{id}/images/{image_id}", STORE_ROLE_OPERATE, 0, h_image_delete, 0},
    {"POST", "/v1/products/{}/train", "/v1/products/{id}/train", STORE_ROLE_OPERATE, 1, h_train, 0},
    {"GET", "/v1/products/{}/models", "/v1/products/{id}/models", STORE_ROLE_OPERATE, 0, h_model_list, 0},
    {"POST", "/v1/products/{}/models/{}/activate", "/v1/products/{id}/models/{version}/activate", STORE_ROLE_OPERATE, 0, h_model_activate, 0},
    {"GET", "/v1/products/{}/models/{}/artifact", "/v1/products/{id}/models/{version}/artifact", STORE_ROLE_OPERATE, 0, h_model_artifact, 0},
    {"PUT", "/v1/products/{}/threshold", "/v1/products/{id}/threshold", STORE_ROLE_OPERATE, 1, h_threshold, 0},
    {"POST", "/v1/products/{}/inspect", "/v1/products/{id}/inspect", STORE_ROLE_INSPECT, 2, h_inspect, 1},
    {"GET", "/v1/jobs", "/v1/jobs", STORE_ROLE_OPERATE, 0, h_job_list, 0},
    {"GET", "/v1/jobs/{}", "/v1/jobs/{job_id}", STORE_ROLE_OPERATE, 0, h_job_get, 0},
    {"POST", "/v1/jobs/{}/cancel", "/v1/jobs/{job_id}/cancel", STORE_ROLE_OPERATE, 0, h_job_cancel, 0},
    {"GET", "/v1/inspections", "/v1/inspections", STORE_ROLE_INSPECT, 0, h_inspection_list, 0},
    {"GET", "/v1/inspections/{}", "/v1/inspections/{id}", STORE_ROLE_INSPECT, 0, h_inspection_get, 0},
    {"GET", "/v1/inspections/{}/heatmap.png", "/v1/inspections/{id}/heatmap.png", STORE_ROLE_INSPECT, 0, h_heatmap, 0},
    {"GET", "/v1/inspections/{}/map.png", "/v1/inspections/{id}/map.png", STORE_ROLE_INSPECT, 0, h_map, 0},
    {"POST", "/v1/keys", "/v1/keys", STORE_ROLE_ADMIN, 1, h_key_create, 0},
    {"GET", "/v1/keys", "/v1/keys", STORE_ROLE_ADMIN, 0, h_key_list, 0},
    {"DELETE", "/v1/keys/{}", "/v1/keys/{id}", STORE_ROLE_ADMIN, 0, h_key_delete, 0},
    {"GET", "/v1/products/{}/images/{}/thumbnail", "/v1/products/{id}/images/{image_id}/thumbnail", STORE_ROLE_OPERATE, 0, h_image_thumbnail, 0},
    {"GET", "/v1/jobs/{}/events", "/v1/jobs/{job_id}/events", STORE_ROLE_OPERATE, 0, h_job_events, 0},
    {"GET", "/v1/inspections/{}/image", "/v1/inspections/{id}/image", STORE_ROLE_INSPECT, 0, h_inspection_image, 0},
    {"GET", "/v1/products/{}/models/{}/bundle", "/v1/products/{id}/models/{version}/bundle", STORE_ROLE_OPERATE, 0, h_model_bundle, 0},
    {"POST", "/v1/products/{}/models", "/v1/products/{id}/models", STORE_ROLE_OPERATE, 2, h_model_import, 0},
    {"PUT", "/v1/products/{}/mask", "/v1/products/{id}/mask", STORE_ROLE_OPERATE, 2, h_mask_put, 0},
    {"GET", "/v1/products/{}/mask", "/v1/products/{id}/mask", STORE_ROLE_OPERATE, 0, h_mask_get, 0},
    {"DELETE", "/v1/products/{}/mask", "/v1/products/{id}/mask", STORE_ROLE_OPERATE, 0, h_mask_delete, 0},
    {"GET", "/v1/events", "/v1/events", STORE_ROLE_OPERATE, 0, h_event_list, 0},
    {"POST", "/v1/sinks", "/v1/sinks", STORE_ROLE_ADMIN, 1, h_sink_create, 0},
    {"GET", "/v1/sinks", "/v1/sinks", STORE_ROLE_ADMIN, 0, h_sink_list, 0},
    {"GET", "/v1/sinks/{}", "/v1/sinks/{id}", STORE_ROLE_ADMIN, 0, h_sink_get, 0},
    {"PATCH", "/v1/sinks/{}", "/v1/sinks/{id}", STORE_ROLE_ADMIN, 1, h_sink_patch, 0},
    {"DELETE", "/v1/sinks/{}", "/v1/sinks/{id}", STORE_ROLE_ADMIN, 0, h_sink_delete, 0},
    {"POST", "/v1/sinks/{}/redeliver", "/v1/sinks/{id}/redeliver", STORE_ROLE_ADMIN, 0, h_sink_redeliver, 0},
    {"POST", "/v1/inspections/{}/label", "/v1/inspections/{id}/label", STORE_ROLE_INSPECT, 1, h_inspection_label, 0},
    {"GET", "/v1/products/{}/drift", "/v1/products/{id}/drift", STORE_ROLE_INSPECT, 0, h_product_drift, 0},
    {"DELETE", "/v1/products/{}/models/{}", "/v1/products/{id}/models/{version}", STORE_ROLE_OPERATE, 0, h_model_delete, 0},
    {"GET", "/v1/inspections/export", "/v1/inspections/export", STORE_ROLE_INSPECT, 0, h_inspection_export, 0},
};
const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];

/* The JSON routes' body limits (api_int.h); each is read whole before it is
 * parsed, so the limit is also what one request can make the daemon hold. */
static const struct {
    api_handler fn;
    size_t max;
} json_body_max[] = {
    {h_product_create, API_BODY_SETTINGS}, {h_product_patch, API_BODY_SETTINGS},
    {h_train, API_BODY_SETTINGS},          {h_threshold, API_BODY_SMALL},
    {h_key_create, API_BODY_SMALL},        {h_inspection_label, API_BODY_SMALL},
    {h_sink_create, API_BODY_SINK},        {h_sink_patch, API_BODY_SINK},
};

size_t api_route_body_max(const api_route *route)
{
    for (size_t i = 0; route != NULL && i < sizeof json_body_max / sizeof json_body_max[0]; i++)
        if (json_body_max[i].fn == route->fn)
            return json_body_max[i].max;
    return 0;
}

/* The query parameters each handler reads (space-separated); any other is
 * 400 unknown_query_parameter (line.c), so a typo or a filter this version
 * lacks is never silently ignored. A handler not listed takes none. */
#define Q_PAGE "limit cursor after "
#define Q_AUDIT "product decision verdict since until model_version part_id serial camera station order "
static const struct {
    api_handler fn;
    const char *names;
} query_allowed[] = {
    {h_product_list, Q_PAGE},
    {h_image_list, Q_PAGE},
    {h_model_list, Q_PAGE},
    {h_job_list, Q_PAGE "product state"},
    {h_key_list, Q_PAGE},
    {h_inspection_list, Q_PAGE Q_AUDIT},
    {h_inspection_export, Q_AUDIT "cursor after format"},
    {h_inspect, "store heatmap part_id serial camera station order"},
    {h_event_list, Q_PAGE "kind product since until"},
    {h_sink_list, Q_PAGE},
    {h_model_import, "activate"},
};

const char *api_route_query(const api_route *route)
{
    for (size_t i = 0; route != NULL && i < sizeof query_allowed / sizeof query_allowed[0]; i++)
        if (query_allowed[i].fn == route->fn)
            return query_allowed[i].names;
    return "";
}
