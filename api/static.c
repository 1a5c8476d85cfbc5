/* static.c - the operator console's files (web/), served at / by the daemon
 * itself. Read from a directory at request time rather than embedded, so an
 * installed daemon serves what `make install` put in its share folder and a
 * build tree serves the sources as they are edited.
 *
 * Only a GET or HEAD whose path no API route knows reaches this file
 * (http.c asks after the route table), so the API's paths, the inspection
 * path first, cost nothing more. The directory is flat: a name is one path
 * segment of [A-Za-z0-9_-] with one dot before a known extension, opened
 * with O_NOFOLLOW below the web directory's descriptor and served only when
 * it is a regular file: no "..", no hidden file, no symlink out. */
#define _GNU_SOURCE
#include "api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base_log.h"

/* Inline script and style are refused, as are frames of the console in
 * another site (clickjacking of the buttons that activate and revoke). */
static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static const api_route static_route = {"GET", "/", "/console", STORE_ROLE_NONE, 0, h_static, 0};

int static_claim(hreq *r, const char *url)
{
    if (r->ctx->web_dir == NULL || r->ctx->web_dir[0] == '\0')
        return 0;
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return 0;
    if (web_file_name(url, r->params[0], sizeof r->params[0]) == NULL)
        return 0;
    r->route = &static_route;
    r->n_params = 1;
    return 1;
}

static void security_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

/* Whether If-None-Match names etag (a list, or *). */
static int etag_matches(hreq *r, const char *etag)
{
    const char *inm = req_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm == NULL)
        return 0;
    return strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL;
}

static enum MHD_Result static_send(hreq *r, int fd, const struct stat *st, const char *ctype)
{
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx\"", (unsigned long long)st->st_ino,
             (unsigned long long)st->st_size, (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
             (unsigned long long)st->st_mtim.tv_nsec);
    int fresh = etag_matches(r, etag);
    struct MHD_Response *resp;
    if (fresh) {
        close(fd);
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_fd((uint64_t)st->st_size, fd); /* MHD closes fd */
    }
    if (resp == NULL)
        return MHD_NO;
    security_headers(resp);
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "ETag", etag);
    /* revalidated on every load: a new daemon's console is seen at once */
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    int status = fresh ? 304 : 200;
    r->status = status;
    enum MHD_Result ret = MHD_queue_response(r->con, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result h_static(hreq *r)
{
    const char *name = r->params[0];
    int dir = open(r->ctx->web_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        log_write(LL_WARN, "console", "cannot open the web directory %s: %s", r->ctx->web_dir,
                  strerror(errno));
        return reply_error(r, 404, "not_found", "no such file: /%s", name);
    }
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    close(dir);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return reply_error(r, 404, "not_found", "no such file: /%s", name);
    }
    return static_send(r, fd, &st, web_file_type(name));
}

static int has_index(const char *dir)
{
    char path[CFG_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/index.html", dir);
    return access(path, R_OK) == 0;
}

void static_resolve(const char *configured, char *out, size_t cap)
{
    char exe[CFG_PATH_MAX];
    out[0] = '\0';
    if (configured != NULL && configured[0] != '\0') {
        snprintf(out, cap, "%s", configured);
        if (!has_index(out))
            log_write(LL_WARN, "console", "--web-dir %s holds no index.html", out);
        return;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            /* <prefix>/bin/cfa-server -> <prefix>/share/cfa-inspect/web */
            snprintf(out, cap, "%s/%s", exe, CFA_WEB_FROM_BIN);
            if (has_index(out)) {
                log_write(LL_INFO, "console", "serving the console from %s", out);
                return;
            }
        }
    }
    snprintf(out, cap, "%s", CFA_WEB_SOURCE_DIR); /* a build tree */
    if (!has_index(out)) {
        log_write(LL_WARN, "console", "no console files found; pass --web-dir");
        out[0] = '\0';
    } else {
        log_write(LL_INFO, "console", "serving the console from %s", out);
    }
}
