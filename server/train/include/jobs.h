/*
 * jobs.h - the training job runner: one thread that claims queued jobs from
 * the store and trains them one at a time with its own backbone replica.
 *
 * A job's settings are its params: POST /train resolves them once with
 * settings_resolve() (the daemon's defaults < the product's settings < the
 * request body; settings.h) and stores the result; the runner reads them back
 * over the daemon's defaults (cfg->train), which fill in what a job queued
 * by an older version left out.
 *
 * A job runs as steps (jobs.c): split, train, calibrate, record.
 * Split: a fraction of the good images (holdout, default 0.1: floor(holdout
 * x n), at least 2 when there are >= 10 images, at least 1 when >= 3, none
 * below 3) is held out of training, chosen by a seeded shuffle of the
 * sha256-ordered list (calib_holdout_count, calib_shuffle in calib.h).
 * Calibrate: the new model scores the held-out images, and
 *     s = the held-out scores sorted ascending, m = |s|
 *     q = s[ceil((1 - target_far) * m) - 1]   (target_far 0 -> max score)
 *     threshold = next float above q * margin (margin default 1.0)
 * so at most target_far of the held-out images score >= threshold
 * (calib_threshold). With no held-out image the training images are scored
 * instead (documented in the model's figures as "calibration": "train"); a
 * NaN score fails the job.
 * Record: the model, its threshold and figures are stored, and with
 * activate (default true) it becomes the product's active version.
 *
 * Cancel: POST /cancel sets the store's cancel flag; the runner sees it at
 * the next progress report (and at once through jobs_cancel_hint) and ends
 * the job 'canceled' without writing a model.
 * Shutdown: jobs_stop interrupts a running job and leaves it 'running' in the
 * database; store_jobs_recover() at the next start re-queues it (default) or
 * fails it (--requeue-jobs=0).
 *
 * Thread-safety: jobs_notify, jobs_cancel_hint and jobs_alive may be called
 * from any thread; jobs_start and jobs_stop once.
 */
#ifndef CFA_JOBS_H
#define CFA_JOBS_H

#include <stddef.h>

#include "config.h"
#include "store.h"

typedef struct jobs jobs_t;

struct img_budget; /* budget.h */

/* Loads a backbone on device and starts the runner thread. cfg holds the
 * training defaults and image limits; pixels (may be NULL) is the decoded-
 * pixel budget the job's decodes share with requests. cfg, pixels and st
 * must outlive the runner. Returns 0, or -1 with a message in err. */
int jobs_start(store_t *st, const cfg_t *cfg, struct img_budget *pixels, const char *device,
               jobs_t **out /* OUT */, char *err, size_t errlen);
/* A job was queued: wake the runner now instead of at its next poll. */
void jobs_notify(jobs_t *j);
/* A cancel of job_id was recorded in the store: stop it soon. */
void jobs_cancel_hint(jobs_t *j, const char *job_id);
/* 1 while the runner thread is alive. */
int jobs_alive(jobs_t *j);
/* Interrupts the running job (left for store_jobs_recover), stops the
 * thread, frees. NULL is a no-op. */
void jobs_stop(jobs_t *j);

#endif
