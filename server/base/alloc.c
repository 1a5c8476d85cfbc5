/* alloc.c - allocation that aborts on out-of-memory (base_alloc.h). */
#include "base_alloc.h"

#include <stdlib.h>
#include <string.h>

#include "base_log.h"

/* The log formats into a stack buffer, so it still works with no heap left. */
static void out_of_memory(const char *fn, size_t n)
{
    log_write(LL_ERROR, "alloc", "%s: out of memory (%zu bytes)", fn, n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        out_of_memory("xmalloc", n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) /* calloc also refuses n * size overflowing size_t */
        out_of_memory("xcalloc", n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    /* realloc(p, 0) may free p and return NULL: never ask for 0 */
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        out_of_memory("xrealloc", n);
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}
