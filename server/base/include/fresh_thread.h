/*
 * fresh_thread.h - run a piece of libtorch work on a thread that ends with it.
 *
 * libgomp keeps an OpenMP thread team for every thread that ever ran a
 * parallel region, and when the process holds more OpenMP threads than CPUs
 * it stops spinning between parallel regions and sleeps on a futex instead
 * (its "throttled" spin count, not settable from the environment). A daemon
 * whose main thread loaded the backbone and whose job thread trained a model
 * thus paid a futex wake-up per parallel region on every inspection: 88 ms
 * instead of 66 ms per 900 x 900 image on 2 cores (docs/BENCHMARKS.md).
 * Work done on a thread that then exits takes its team with it (libgomp frees
 * a thread's pool when the thread exits), so only the inference workers keep
 * teams. Used for backbone loads and training jobs.
 */
#ifndef CFA_FRESH_THREAD_H
#define CFA_FRESH_THREAD_H

#include <stddef.h>

#include "cfa.h"

/* Runs fn(arg) on a new thread and waits for it; if no thread can be
 * created, runs it on the calling thread. */
void fresh_thread_run(void (*fn)(void *arg), void *arg);

/* cfa_backbone_load on a fresh thread; on failure the engine's message is
 * copied into err (cfa_last_error is per thread). */
cfa_status fresh_thread_load_backbone(const char *path, const char *device,
                                      cfa_backbone **out /* OUT */, char *err, size_t errlen);

#endif
