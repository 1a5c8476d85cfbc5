/* clock.c - the process's clocks (base_clock.h). */
#include "base_clock.h"

double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec wall_deadline(double ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!(ms > 0)) /* NaN too */
        return ts;
    int64_t ns = (int64_t)ts.tv_nsec + (int64_t)(ms * 1e6);
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}
