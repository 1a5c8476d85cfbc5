/* export.c - GET /v1/inspections/export: the audit trail as CSV or NDJSON,
 * streamed (chunked) with the filters of GET /v1/inspections and no page
 * cap.
 *
 * MHD asks for the body piece by piece (export_read); each time the buffer
 * runs dry the next page of EXPORT_PAGE rows is read after the last id sent,
 * on a reader connection taken and given back within the call. Memory stays
 * one page whatever the row count, a slow client holds no connection, no
 * snapshot and no lock (the writer and checkpoints go on), and the order is
 * the list's: newest first by id, the cursor a page boundary, so rows added
 * during the export sort before the cursor and are not mixed in. */
#define _GNU_SOURCE
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_alloc.h"
#include "base_log.h"

#define EXPORT_PAGE 256

typedef struct export_state {
    store_t *st;
    store_inspection_filter f;
    char *strs[8];              /* the filter's strings, owned          */
    char after[STORE_ID_LEN];
    int csv, started, done;
    char *buf;                  /* the current page, formatted          */
    size_t len, cap, pos;
    int64_t rows, bytes;
    char request_id[65];
} export_state;

static const char CSV_HEAD[] = "inspection_id,created_at,product,model_version,score,threshold,"
                               "decision,verdict,map_max,part_id,serial,camera,station,order,"
                               "key_id,has_images,regions\r\n";

static void put(export_state *x, const char *s, size_t n)
{
    if (x->len + n + 1 > x->cap) {
        x->cap = (x->len + n + 1) * 2;
        x->buf = xrealloc(x->buf, x->cap);
    }
    memcpy(x->buf + x->len, s, n);
    x->len += n;
}

/* A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first:
 * OWASP's list) gets a leading apostrophe, so an MES operator who opens the
 * export never executes what a camera sent as a part id. Numbers are not text
 * cells and keep their sign. */
static int formula_like(const char *s)
{
    return s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
}

/* One CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line
 * break, quotes doubled; text cells guarded against formulas. */
static void put_cell(export_state *x, const char *s, int text, int last)
{
    const char *guard = text && formula_like(s) ? "'" : "";
    if (strpbrk(s, ",\"\r\n") == NULL) {
        put(x, guard, strlen(guard));
        put(x, s, strlen(s));
    } else {
        put(x, "\"", 1);
        put(x, guard, strlen(guard));
        for (const char *p = s; *p; p++)
            put(x, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
        put(x, "\"", 1);
    }
    put(x, last ? "\r\n" : ",", last ? 2 : 1);
}

static void put_csv_row(export_state *x, const store_inspection_t *in)
{
    char num[4][40], when[STORE_TIME_LEN];
    store_time_format(in->created_at, when);
    snprintf(num[0], sizeof num[0], "%lld", (long long)in->model_version);
    snprintf(num[1], sizeof num[1], "%.9g", in->score);
    snprintf(num[2], sizeof num[2], "%.9g", in->threshold);
    snprintf(num[3], sizeof num[3], "%.9g", in->map_max);
    const char *verdict = in->verdict[0] ? in->verdict : in->decision;
    const char *numeric[] = {in->id, when, in->product, num[0], num[1], num[2],
                             in->decision, verdict, num[3]};
    const char *text[] = {in->part.part_id, in->part.serial, in->part.camera,
                          in->part.station, in->part.order, in->key_id};
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++)
        put_cell(x, numeric[i], 0, 0);
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        put_cell(x, text[i], 1, 0);
    put_cell(x, in->has_images ? "1" : "0", 0, 0);
    put_cell(x, in->regions_json != NULL ? in->regions_json : "[]", 0, 1);
}

static void put_ndjson_row(export_state *x, const store_inspection_t *in)
{
    json_t *o = inspection_json(in);
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (s != NULL) {
        put(x, s, strlen(s));
        put(x, "\n", 1);
    }
    free(s);
}

/* The next page into the buffer; 0, or -1 when the store failed. */
static int next_page(export_state *x)
{
    store_inspection_t *arr = NULL;
    size_t n = 0;
    char next[STORE_ID_LEN] = "";
    x->len = x->pos = 0;
    if (!x->started && x->csv)
        put(x, CSV_HEAD, sizeof CSV_HEAD - 1);
    x->started = 1;
    x->f.after = x->after[0] ? x->after : x->f.after;
    x->f.limit = EXPORT_PAGE;
    store_status ss = store_inspection_list(x->st, &x->f, &arr, &n, next);
    if (ss != STORE_OK) {
        log_error("api", "export [%s] stopped after %lld rows: %s", x->request_id,
                  (long long)x->rows, store_strerror(ss));
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        x->csv ? put_csv_row(x, &arr[i]) : put_ndjson_row(x, &arr[i]);
    x->rows += (int64_t)n;
    store_inspections_free(arr, n);
    snprintf(x->after, sizeof x->after, "%s", next);
    x->done = next[0] == '\0';
    return 0;
}

static ssize_t export_read(void *cls, uint64_t pos, char *out, size_t max)
{
    export_state *x = cls;
    (void)pos;
    if (x->pos == x->len) {
        if (x->done && x->started)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (next_page(x) != 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (x->len == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = x->len - x->pos < max ? x->len - x->pos : max;
    memcpy(out, x->buf + x->pos, n);
    x->pos += n;
    x->bytes += (int64_t)n;
    return (ssize_t)n;
}

static void export_free(void *cls)
{
    export_state *x = cls;
    log_info("api", "export [%s]: %lld rows, %lld bytes", x->request_id, (long long)x->rows,
             (long long)x->bytes);
    for (size_t i = 0; i < sizeof x->strs / sizeof x->strs[0]; i++)
        free(x->strs[i]);
    free(x->buf);
    free(x);
}

/* The filter's strings copied into x: they live as long as the response. */
static void own_strings(export_state *x)
{
    const char **f[] = {&x->f.product, &x->f.decision, &x->f.after,   &x->f.part_id,
                        &x->f.serial,  &x->f.camera,   &x->f.station, &x->f.order};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (*f[i] != NULL)
            *f[i] = x->strs[i] = xstrdup(*f[i]);
}

enum MHD_Result h_inspection_export(hreq *r)
{
    store_inspection_filter f;
    memset(&f, 0, sizeof f);
    const char *fmt = req_query(r, "format");
    if (fmt == NULL || (strcmp(fmt, "csv") != 0 && strcmp(fmt, "ndjson") != 0))
        return reply_error(r, 400, "invalid_format", "format must be csv or ndjson");
    const char *cursor = req_query(r, "cursor");
    f.after = cursor != NULL ? cursor : req_query(r, "after");
    if (f.after != NULL && !store_valid_id(f.after))
        return reply_error(r, 400, "invalid_cursor", "cursor must be an inspection id");
    if (inspection_filters(r, &f) != 0)
        return MHD_YES;
    export_state *x = xcalloc(1, sizeof *x);
    x->st = r->ctx->st;
    x->f = f;
    x->csv = strcmp(fmt, "csv") == 0;
    snprintf(x->request_id, sizeof x->request_id, "%s", r->request_id);
    own_strings(x);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, export_read, x, export_free);
    if (resp == NULL) {
        export_free(x);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", x->csv ? "text/csv; charset=utf-8"
                                                        : "application/x-ndjson");
    MHD_add_response_header(resp, "Content-Disposition",
                            x->csv ? "attachment; filename=\"inspections.csv\""
                                   : "attachment; filename=\"inspections.ndjson\"");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    return reply_response(r, 200, resp);
}
