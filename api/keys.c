/* keys.c - /v1/keys (admin): create, list, revoke. */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result h_key_create(hreq *r)
{
    int ok;
    store_role role;
    static const char *const fields[] = {"name", "role", NULL};
    json_t *body = req_json(r, &ok);
    if (!ok)
        return MHD_YES;
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *rs = json_string_value(json_object_get(body, "role"));
    if (body_only(r, body, fields) != 0 ||
        field_max(r, json_object_get(body, "name"), "name", API_NAME_MAX) != 0) {
        json_decref(body);
        return MHD_YES;
    }
    if (!json_is_object(body) || rs == NULL || store_role_parse(rs, &role) != 0) {
        json_decref(body);
        return reply_error(r, 400, "invalid_body",
                           "body must be {\"name\": \"...\", \"role\": \"inspect\"|\"operate\"|\"admin\"}");
    }
    char key[STORE_KEY_MAX];
    store_key_t k;
    memset(&k, 0, sizeof k);
    store_event_t ev;
    event_fill_row(r, &ev, "key.created", NULL, NULL, event_after_key);
    store_status ss =
        store_key_create(r->ctx->st, name != NULL ? name : "", role, NULL, key, &k, &ev);
    store_event_clear(&ev);
    json_decref(body);
    if (ss != STORE_OK)
        return store_fail(r, ss, "key", "");
    json_t *o = key_json(&k);
    json_object_set_new(o, "key", json_string(key));
    memset(key, 0, sizeof key);
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/keys/%s", k.id);
    store_key_clear(&k);
    return reply_json_hdr(r, 201, o, "Location", loc);
}

enum MHD_Result h_key_list(hreq *r)
{
    store_key_t *arr = NULL;
    size_t limit, n = 0;
    const char *cursor;
    char next[STORE_CURSOR_LEN] = "";
    if (query_page(r, store_valid_time_cursor, &limit, &cursor) != 0)
        return MHD_YES;
    store_status ss = store_key_list(r->ctx->st, limit, cursor, &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "key list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, key_json(&arr[i]));
    store_keys_free(arr, n);
    return reply_list(r, "keys", a, next);
}

enum MHD_Result h_key_delete(hreq *r)
{
    if (!store_valid_id(r->params[0]))
        return reply_error(r, 404, "not_found", "no such key: %s", r->params[0]);
    store_event_t ev;
    event_fill(r, &ev, "key.revoked", NULL, json_pack("{s:s}", "id", r->params[0]),
               json_pack("{s:s, s:b}", "id", r->params[0], "revoked", 1));
    store_status ss = store_key_revoke(r->ctx->st, r->params[0], &ev);
    store_event_clear(&ev);
    if (ss == STORE_ERR_CONFLICT)
        return reply_error(r, 409, "last_admin_key",
                           "key %s is the last active admin key: create another admin key "
                           "before revoking it", r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "key", r->params[0]);
    return reply_empty(r, 204);
}
