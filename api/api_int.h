/* api_int.h - shared between the files of api/ (not used outside it). */
#ifndef CFA_API_INT_H
#define CFA_API_INT_H

#include <microhttpd.h>
#include <jansson.h>
#include <stdint.h>

#include "api.h"
#include "parse.h"

typedef enum { ROLE_NONE = 0, ROLE_INSPECT = 1, ROLE_OPERATE = 2, ROLE_ADMIN = 3 } api_role;

typedef struct hreq hreq;
typedef enum MHD_Result (*api_handler)(hreq *r);

typedef struct api_route {
    const char *method;
    const char *pattern;  /* "{}" for one path segment                */
    const char *label;    /* route label for metrics                  */
    api_role role;        /* ROLE_NONE: no key needed                 */
    int body;             /* 0 none expected, 1 JSON, 2 raw/multipart */
    api_handler fn;
    int announce;         /* 1: tell the pool as soon as the headers are
                             in (pool_announce), so a worker filling a
                             batch waits for this request's body        */
} api_route;

/* Per-request state (the MHD con_cls), created on the first callback and
 * freed in the completed callback. */
struct hreq {
    struct MHD_Connection *con;
    api_ctx *ctx;
    const api_route *route;
    char method[16];
    char params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
    int n_params;
    int path_known;        /* path matched some route (for 405)      */
    char allow[64];
    uint8_t *body;
    size_t len, cap;
    int too_big;
    size_t max_body;
    double t0;
    int status;            /* status sent, for metrics               */
    int role;              /* role of the key presented              */
    int announced;         /* counted by pool_announce, not yet queued  */
    int deny_status;       /* 401/403/404/405 decided from the headers */
    char deny_code[32];
    char deny_msg[320];
    char key_id[40];
};

extern const api_route api_routes[];
extern const size_t api_n_routes;
extern const unsigned char api_openapi_json[];
extern const size_t api_openapi_json_len;

/* Responses. Each queues the response and returns MHD's result. */
enum MHD_Result reply_json(hreq *r, int status, json_t *body /* stolen */);
enum MHD_Result reply_json_hdr(hreq *r, int status, json_t *body /* stolen */,
                               const char *hname, const char *hval);
enum MHD_Result reply_error(hreq *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum MHD_Result reply_bytes(hreq *r, int status, const char *ctype, void *buf /* malloc'd, stolen */,
                            size_t len);
enum MHD_Result reply_static(hreq *r, int status, const char *ctype, const void *buf,
                             size_t len);
enum MHD_Result reply_empty(hreq *r, int status);

const char *req_header(hreq *r, const char *name);
const char *req_query(hreq *r, const char *name);
/* Parses the JSON body (empty body -> NULL with *ok = 1). On malformed
 * JSON replies 400 and sets *ok = 0. */
json_t *req_json(hreq *r, int *ok);
/* Content-Type without parameters, lower case, into buf. */
void req_content_type(hreq *r, char *buf, size_t cap);

char *b64_encode(const void *data, size_t len);

#endif
