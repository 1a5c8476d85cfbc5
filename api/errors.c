/* errors.c - how failures of the layers below become HTTP errors. */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maps a store failure to an error reply. what names the thing ("product"). */
enum MHD_Result store_fail(hreq *r, store_status ss, const char *what, const char *id)
{
    switch (ss) {
    case STORE_ERR_NOT_FOUND:
        return reply_error(r, 404, "not_found", "no such %s: %s", what, id);
    case STORE_ERR_EXISTS:
        return reply_error(r, 409, "already_exists", "%s %s already exists", what, id);
    case STORE_ERR_CONFLICT:
        return reply_error(r, 409, "conflict", "%s %s: %s", what, id, store_strerror(ss));
    case STORE_ERR_INVALID:
        return reply_error(r, 400, "invalid_argument", "invalid %s: %s", what, id);
    case STORE_ERR_FULL:
        return reply_error(r, 507, "storage_full", "%s", store_strerror(ss));
    case STORE_ERR_BUSY:
        return reply_error(r, 503, "store_busy", "%s", store_strerror(ss));
    default:
        return reply_error(r, 500, "store_error", "%s", store_strerror(ss));
    }
}
