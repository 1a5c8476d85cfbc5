/* bench_common.h - small helpers shared by the benchmark programs of
 * tests/bench/: wall clock, peak RSS, image lists, bilinear resize,
 * percentiles. Plain C11 + POSIX, no engine dependency. */
#ifndef CFA_BENCH_COMMON_H
#define CFA_BENCH_COMMON_H

#include <stddef.h>

/* Monotonic wall time in seconds. */
double bench_now(void);

/* Peak resident set size of this process in MiB (getrusage ru_maxrss). */
double bench_peak_rss_mib(void);

/* Regular files of dir whose names end in .png/.jpg/.jpeg (case-insensitive),
 * as full paths, sorted by name. Returns the count (0 on error, *out NULL);
 * free with bench_free_list. */
int bench_list_images(const char *dir, char ***out);
void bench_free_list(char **list, int n);

/* Bilinear resize of interleaved RGB float (align_corners = false, the
 * torch/OpenCV convention). Returns a new buffer of dw * dh * 3 floats (free())
 * or NULL when out of memory. */
float *bench_resize_rgb(const float *src, int sw, int sh, int dw, int dh);

/* q-quantile (0..1) of v[0..n-1] with linear interpolation; sorts v in place.
 * Returns 0 when n == 0. */
double bench_percentile(double *v, int n, double q);

/* One-line description of this machine: CPU model, cores, memory, kernel. */
void bench_machine(char *buf, size_t len);

/* Load average (1 min) from /proc/loadavg, -1 when unknown. */
double bench_load1(void);

#endif
