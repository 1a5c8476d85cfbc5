/* blas_cpu.c - make OpenBLAS use the kernels this CPU supports.
 *
 * OpenBLAS picks its GEMM kernels from the CPU model number when the library
 * is loaded. On virtual machines whose CPU reports a model number that
 * OpenBLAS 0.3.21 (Debian 12) does not know, it falls back to "Prescott"
 * (SSE3) kernels even on an AVX-512 CPU: measured on the development VM
 * (Sapphire Rapids), a 3136 x 1792 x 3136 SGEMM runs at 63 GFLOPS with
 * Prescott kernels and 285 GFLOPS with SkylakeX kernels on 2 threads. CFA's
 * cost is almost all SGEMM, so this is a 3-4x difference for the whole engine.
 *
 * The choice is made in a library constructor, before main(), and the only
 * supported override is the OPENBLAS_CORETYPE environment variable. So when
 * the loaded OpenBLAS reports a core older than what the CPU (and OS) support,
 * we set OPENBLAS_CORETYPE and re-execute the program once; the variable stays
 * set, so the second start does nothing. A user's own OPENBLAS_CORETYPE is
 * never touched; CFA_BLAS_KEEP=1 disables the whole thing. */
#define _GNU_SOURCE
#include "cfa.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Core names OpenBLAS gives kernels without AVX2 (its generic x86 fallbacks). */
static int is_old_core(const char *name)
{
    static const char *const old[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                      "Atom", "Katmai", "Coppermine", "Northwood", "Banias",
                                      "Sandybridge", "Unknown"};
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        if (strcmp(name, old[i]) == 0)
            return 1;
    return 0;
}

static const char *best_core(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* GCC's and clang's checks include the OS's XSAVE support (XCR0) */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

const char *cfa_blas_core(void)
{
    typedef char *(*corename_fn)(void);
    corename_fn f = (corename_fn)dlsym(RTLD_DEFAULT, "openblas_get_corename");
    return f ? f() : NULL;
}

int cfa_blas_fix_cpu(char **argv)
{
    const char *keep = getenv("CFA_BLAS_KEEP");
    if ((keep && *keep && strcmp(keep, "0") != 0) || getenv("OPENBLAS_CORETYPE"))
        return 0;
    const char *core = cfa_blas_core(), *want = best_core();
    if (!core || !want || !is_old_core(core))
        return 0;
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0)
        return -1;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the slow kernels */
    unsetenv("OPENBLAS_CORETYPE");
    return -1;
}
