/*
 * base_alloc.h - allocation that does not fail: on out-of-memory it logs
 * "out of memory" at error level and aborts.
 *
 * The process has no sensible way on from a failed small allocation, and a
 * NULL check after every malloc is code nobody tests; like Redis and SQLite's
 * hosts we stop loudly instead. Requests whose size comes from outside (a
 * body length, an image size) are bounded before they get here, or use
 * malloc and answer the request with an error.
 *
 *     item *v = xcalloc(n, sizeof *v);
 *     v = xrealloc(v, 2 * n * sizeof *v);
 *     char *name = xstrdup(s);
 *
 * A size of 0 allocates 1 byte, so the result is never NULL. Free with free().
 * Thread-safety: as malloc.
 */
#ifndef CFA_BASE_ALLOC_H
#define CFA_BASE_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));

#endif
