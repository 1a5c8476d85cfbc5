/* bench_common.c - see bench_common.h. */
#define _GNU_SOURCE
#include "bench_common.h"
#include "cfa.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1.0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return 0;
    return strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
           strcasecmp(dot, ".jpeg") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int bench_list_images(const char *dir, char ***out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0, cap = 0;
    char **list = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name))
            continue;
        char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0)
            break;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nl = realloc(list, (size_t)cap * sizeof *nl);
            if (nl == NULL) {
                free(path);
                break;
            }
            list = nl;
        }
        list[n++] = path;
    }
    closedir(d);
    if (n > 0)
        qsort(list, (size_t)n, sizeof *list, cmp_str);
    *out = list;
    return n;
}

void bench_free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

float *bench_resize_rgb(const float *src, int sw, int sh, int dw, int dh)
{
    float *dst = malloc((size_t)dw * (size_t)dh * 3 * sizeof *dst);
    if (dst == NULL)
        return NULL;
    const double sx = (double)sw / dw, sy = (double)sh / dh;
    for (int y = 0; y < dh; y++) {
        double fy = (y + 0.5) * sy - 0.5;
        if (fy < 0)
            fy = 0;
        int y0 = (int)fy;
        if (y0 > sh - 1)
            y0 = sh - 1;
        int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
        float wy = (float)(fy - y0);
        for (int x = 0; x < dw; x++) {
            double fx = (x + 0.5) * sx - 0.5;
            if (fx < 0)
                fx = 0;
            int x0 = (int)fx;
            if (x0 > sw - 1)
                x0 = sw - 1;
            int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
            float wx = (float)(fx - x0);
            const float *p00 = src + ((size_t)y0 * sw + x0) * 3;
            const float *p01 = src + ((size_t)y0 * sw + x1) * 3;
            const float *p10 = src + ((size_t)y1 * sw + x0) * 3;
            const float *p11 = src + ((size_t)y1 * sw + x1) * 3;
            float *q = dst + ((size_t)y * dw + x) * 3;
            for (int c = 0; c < 3; c++) {
                float top = p00[c] + (p01[c] - p00[c]) * wx;
                float bot = p10[c] + (p11[c] - p10[c]) * wx;
                q[c] = top + (bot - top) * wy;
            }
        }
    }
    return dst;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_percentile(double *v, int n, double q)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    if (q <= 0)
        return v[0];
    if (q >= 1)
        return v[n - 1];
    double pos = q * (n - 1);
    int i = (int)pos;
    double f = pos - i;
    return i + 1 < n ? v[i] + (v[i + 1] - v[i]) * f : v[i];
}

void bench_machine(char *buf, size_t len)
{
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c != NULL) {
                    c++;
                    while (*c == ' ' || *c == '\t')
                        c++;
                    c[strcspn(c, "\n")] = '\0';
                    snprintf(model, sizeof model, "%s", c);
                }
                break;
            }
        }
        fclose(f);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double mem_gib = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) /
                     (1024.0 * 1024.0 * 1024.0);
    struct utsname u;
    if (uname(&u) != 0)
        snprintf(u.release, sizeof u.release, "?");
    const char *blas = cfa_blas_core();
    snprintf(buf, len, "%s, %ld cores, %.1f GiB RAM, Linux %s, OpenBLAS core %s", model, cores,
             mem_gib, u.release, blas ? blas : "(not OpenBLAS)");
}

double bench_load1(void)
{
    double l = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1.0;
        fclose(f);
    }
    return l;
}
