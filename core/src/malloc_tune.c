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
 * process's own peak.
 *
 * One arena: a thread other than main (the daemon's inference worker) gets
 * an arena of its own, made of 64 MiB heaps that glibc deletes as soon as one
 * is wholly free (heap_trim weighs that against M_TOP_PAD, not against the
 * trim threshold). A batch of four 900 x 900 images then created and deleted
 * ~24 heaps per batch: strace showed the worker's 128 MiB mmap / munmap
 * pairs, and the daemon took 1,100-1,350 minor faults per inspection (batch
 * 260 ms against 230 ms in-process) for its first minutes, until the heaps
 * happened to settle. With every thread on the main arena the first minutes
 * take 0-14 faults per inspection. The threads that allocate (HTTP
 * connections, the worker, render and store writers) are few, so one arena
 * lock costs nothing measurable. */
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
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 1);
}
