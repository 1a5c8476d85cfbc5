/* status.cpp - the library-wide bits: version, status strings, the
 * per-thread error message, the log sink, file hashes. */
#include "internal.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

static thread_local std::string g_last_error;
static std::mutex g_log_mu;
static cfa_log_fn g_log_fn = nullptr;
static void *g_log_user = nullptr;

/* the library's version, which can differ from the header's CFA_VERSION_*
 * when a program runs against another build than it was compiled with */
extern "C" const char *cfa_version(void) { return CFA_VERSION_STRING; }
extern "C" int cfa_version_number(void) { return CFA_VERSION_NUMBER; }

extern "C" const char *cfa_status_str(cfa_status s)
{
    switch (s) {
#define CFA_X_CASE(name, value, msg) \
    case name:                \
        return msg;
        CFA_STATUS_TABLE(CFA_X_CASE)
#undef CFA_X_CASE
    default:
        return "unknown status";
    }
}

extern "C" const char *cfa_last_error(void) { return g_last_error.c_str(); }

extern "C" void cfa_free(void *p) { free(p); }

extern "C" void cfa_log_set(cfa_log_fn fn, void *user)
{
    std::lock_guard<std::mutex> lk(g_log_mu);
    g_log_fn = fn;
    g_log_user = user;
}

cfa_status cfa_fail(cfa_status s, const std::string &msg)
{
    g_last_error = msg.empty() ? std::string(cfa_status_str(s)) : msg;
    return s;
}

void cfa_clear_error() { g_last_error.clear(); }

void cfa_log(int level, const char *fmt, ...)
{
    cfa_log_fn fn;
    void *user;
    {
        std::lock_guard<std::mutex> lk(g_log_mu);
        fn = g_log_fn;
        user = g_log_user;
    }
    if (!fn)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(level, buf, user);
}

std::string cfa_sha256_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return "";
    sha256_ctx c;
    sha256_init(&c);
    std::vector<unsigned char> buf(1 << 20);
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), f)) > 0)
        sha256_update(&c, buf.data(), n);
    bool err = ferror(f) != 0;
    fclose(f);
    if (err)
        return "";
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_final(&c, d);
    char hex[SHA256_HEX_LEN];
    sha256_hex(d, sizeof d, hex);
    return hex;
}
