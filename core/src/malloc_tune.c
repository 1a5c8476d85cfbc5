/* malloc_tune.c - keep glibc's malloc from handing fresh pages to every request.
 *
 * glibc serves blocks above its mmap threshold with mmap and returns them with
 * munmap; the threshold adapts to the process's history (it rises when a
 * mapped block is freed), and free memory at the top of a heap above the trim
 * threshold goes back to the kernel. So whether scoring a 900 x 900 image
 * reuses its tensors' memory or faults in ~26 MB of fresh zeroed pages
 * depends on what the process happened to allocate before: measured in
 * cfa-server, one daemon took 6,500 minor faults per inspection (model call
 * 81 ms) and another, same binary and flags, none (65-74 ms).
 *
 * Fixing both thresholds makes every process take the fast path: blocks up
 * to 32 MiB (glibc's largest mmap threshold) come from the heap, and up to
 * 256 MiB of free heap stays mapped for the next request, bounded by the
 * process's own peak. */
#define _GNU_SOURCE
#include "cfa.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

void cfa_tune_malloc(void)
{
    const char *keep = getenv("CFA_MALLOC_KEEP");
    if (keep && *keep && strcmp(keep, "0") != 0)
        return;
    if (!getenv("MALLOC_MMAP_THRESHOLD_"))
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
    if (!getenv("MALLOC_TRIM_THRESHOLD_"))
        mallopt(M_TRIM_THRESHOLD, 256 << 20);
}
