/*
 * base_clock.h - the process's two clocks.
 *
 *     double t0 = mono_ms();  ...  double took = mono_ms() - t0;   durations
 *     int64_t created = wall_ms();                                 timestamps
 *     struct timespec until = wall_deadline(250);
 *     pthread_cond_timedwait(&cv, &mu, &until);                    timed waits
 *
 * mono_ms never jumps (NTP steps, an operator setting the date), so it is the
 * one to measure with; wall_ms is what gets stored and shown. wall_deadline
 * is on the wall clock because that is the clock of a default condition
 * variable (pthread_cond_timedwait without a condattr).
 * Thread-safety: all reentrant.
 */
#ifndef CFA_BASE_CLOCK_H
#define CFA_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC, with the sub-millisecond fraction. */
double mono_ms(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t wall_ms(void);
/* The CLOCK_REALTIME instant ms from now (negative counts as 0). */
struct timespec wall_deadline(double ms);

#endif
