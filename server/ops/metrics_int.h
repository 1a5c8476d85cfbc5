/* metrics_int.h - shared between the files of server/ops' metrics. */
#ifndef CFA_METRICS_INT_H
#define CFA_METRICS_INT_H

#include <stddef.h>

#include "metrics_prom.h"

/* A growing text buffer; oom is set (and the text stops growing) when an
 * allocation fails. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* metrics_product.c: per-product, build and process series. */
void mp_render_extra(sbuf *b, const mp_product_gauge *pg, int n);

#endif
