/* fuzz_web_path.c - request paths against web_file_name (api/parse.c), the
 * check that decides which console file a GET names (api/static.c): a name
 * it accepts is one segment of [A-Za-z0-9_.-] that cannot leave the web
 * directory and has a known type. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static void check_name(const char *name, const char *ctype)
{
    size_t n = strlen(name);
    if (ctype == NULL || n == 0 || n >= ROUTE_PARAM_MAX || name[0] == '.' ||
        strstr(name, "..") != NULL || web_file_type(name) != ctype)
        abort();
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    char name[ROUTE_PARAM_MAX];
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    const char *ctype = web_file_name(s, name, sizeof name);
    if (ctype != NULL)
        check_name(name, ctype);
    (void)web_file_type(s);
    free(s);
    return 0;
}
