/* fresh_thread.c - see fresh_thread.h. */
#include "fresh_thread.h"

#include <pthread.h>
#include <stdio.h>

typedef struct call {
    void (*fn)(void *);
    void *arg;
} call;

static void *trampoline(void *p)
{
    call *c = p;
    c->fn(c->arg);
    return NULL;
}

void fresh_thread_run(void (*fn)(void *arg), void *arg)
{
    call c = {fn, arg};
    pthread_attr_t attr;
    pthread_t t;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setstacksize(&attr, 8u << 20); /* libtorch recursion is deep */
        ok = pthread_create(&t, &attr, trampoline, &c) == 0;
        pthread_attr_destroy(&attr);
    }
    if (ok)
        pthread_join(t, NULL);
    else
        fn(arg);
}

typedef struct bb_load {
    const char *path, *device;
    cfa_backbone **out;
    cfa_status st;
    char *err;
    size_t errlen;
} bb_load;

static void load_backbone(void *arg)
{
    bb_load *l = arg;
    l->st = cfa_backbone_load(l->path, l->device, l->out);
    if (l->st != CFA_OK && l->err != NULL && l->errlen > 0)
        snprintf(l->err, l->errlen, "%s", cfa_last_error());
}

cfa_status fresh_thread_load_backbone(const char *path, const char *device, cfa_backbone **out,
                                      char *err, size_t errlen)
{
    bb_load l = {path, device, out, CFA_OK, err, errlen};
    fresh_thread_run(load_backbone, &l);
    return l.st;
}
