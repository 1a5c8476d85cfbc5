/* fresh_thread.c - see fresh_thread.h. */
#include "fresh_thread.h"

#include <pthread.h>

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
