/*
 * budget.c - a counting semaphore over bytes (budget.h).
 */
#include "budget.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "base_clock.h"

struct img_budget {
    pthread_mutex_t mu;
    pthread_cond_t freed; /* signalled whenever bytes are given back */
    size_t total;
    size_t used;
    size_t peak;
    unsigned long refused;
};

img_budget *img_budget_new(size_t bytes)
{
    if (bytes == 0)
        return NULL;
    img_budget *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return NULL;
    }
    if (pthread_cond_init(&b->freed, NULL) != 0) {
        pthread_mutex_destroy(&b->mu);
        free(b);
        return NULL;
    }
    b->total = bytes;
    return b;
}

void img_budget_free(img_budget *b)
{
    if (b == NULL)
        return;
    pthread_cond_destroy(&b->freed);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

img_status img_budget_acquire(img_budget *b, size_t bytes, int wait_ms)
{
    if (b == NULL || bytes == 0)
        return IMG_OK;
    if (bytes > b->total)
        return IMG_ERR_TOO_LARGE; /* could never fit: no point in waiting */
    /* wall clock: the clock of a default condition variable (base_clock.h) */
    struct timespec until = wall_deadline(wait_ms > 0 ? wait_ms : 0);
    img_status s = IMG_OK;
    pthread_mutex_lock(&b->mu);
    while (b->total - b->used < bytes) {
        if (wait_ms <= 0 || pthread_cond_timedwait(&b->freed, &b->mu, &until) == ETIMEDOUT) {
            if (b->total - b->used >= bytes)
                break;
            s = IMG_ERR_BUSY;
            b->refused++;
            break;
        }
    }
    if (s == IMG_OK) {
        b->used += bytes;
        if (b->used > b->peak)
            b->peak = b->used;
    }
    pthread_mutex_unlock(&b->mu);
    return s;
}

void img_budget_release(img_budget *b, size_t bytes)
{
    if (b == NULL || bytes == 0)
        return;
    pthread_mutex_lock(&b->mu);
    /* a release larger than what is held is a caller's bug: clamp rather
     * than wrap, so the budget cannot be lost for the process's lifetime */
    b->used -= bytes <= b->used ? bytes : b->used;
    pthread_mutex_unlock(&b->mu);
    /* every waiter rechecks: a large release may satisfy several */
    pthread_cond_broadcast(&b->freed);
}

size_t img_budget_total(const img_budget *b)
{
    return b != NULL ? b->total : 0;
}

size_t img_budget_in_use(img_budget *b)
{
    if (b == NULL)
        return 0;
    pthread_mutex_lock(&b->mu);
    size_t v = b->used;
    pthread_mutex_unlock(&b->mu);
    return v;
}

size_t img_budget_peak(img_budget *b)
{
    if (b == NULL)
        return 0;
    pthread_mutex_lock(&b->mu);
    size_t v = b->peak;
    pthread_mutex_unlock(&b->mu);
    return v;
}

unsigned long img_budget_refused(img_budget *b)
{
    if (b == NULL)
        return 0;
    pthread_mutex_lock(&b->mu);
    unsigned long v = b->refused;
    pthread_mutex_unlock(&b->mu);
    return v;
}
