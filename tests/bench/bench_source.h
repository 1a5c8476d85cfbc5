/* bench_source.h - training images for cfa_train() read from files, one
 * decoded image held at a time (shared by bench_model and bench_train). */
#ifndef CFA_BENCH_SOURCE_H
#define CFA_BENCH_SOURCE_H

#include "cfa.h"

typedef struct {
    char **files;
    int n;
} train_src;

/* cfa_image_source over src (which must outlive the returned source). */
cfa_image_source bench_train_source(train_src *src);

#endif
