/* standalone_main.c - runs a libFuzzer harness without libFuzzer (gcc
 * builds): every file of the corpus as it is, then deterministic mutations
 * of them, each passed in a buffer of its exact size so that ASan builds see
 * overreads.
 *
 *     fuzz_x [-runs=N] [-seed=S] DIR_OR_FILE...      (default 5000 runs)
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT (1u << 20)

typedef struct {
    uint8_t *data;
    size_t len;
} input;

static input *inputs;
static size_t n_inputs, cap_inputs;
static uint64_t rng_state;

static uint32_t rng(void)
{
    /* xorshift64*: fixed seed, same mutations on every machine */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    size_t len = buf != NULL ? fread(buf, 1, FUZZ_MAX_INPUT, f) : 0;
    fclose(f);
    if (buf == NULL)
        exit(2);
    if (n_inputs == cap_inputs) {
        cap_inputs = cap_inputs ? 2 * cap_inputs : 64;
        inputs = realloc(inputs, cap_inputs * sizeof *inputs);
        if (inputs == NULL)
            exit(2);
    }
    inputs[n_inputs].data = buf;
    inputs[n_inputs].len = len;
    n_inputs++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        perror(path);
        exit(2);
    }
    /* sorted, so that the mutations do not depend on directory order */
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char **more = realloc(names, (n + 1) * sizeof *names);
        if (more == NULL)
            exit(2);
        names = more;
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL)
            exit(2);
        snprintf(names[n], len, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            add_file(names[i]);
        free(names[i]);
    }
    free(names);
}

static void run(const uint8_t *src, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        exit(2);
    memcpy(copy, src, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

/* One to four edits: byte set, bit flip, interesting value, truncation,
 * insertion, copy of a span within the input. */
static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
    static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x10, 0x40};
    int edits = 1 + (int)(rng() % 4);
    for (int k = 0; k < edits && len > 0; k++) {
        size_t at = rng() % len;
        switch (rng() % 6) {
        case 0:
            buf[at] = (uint8_t)rng();
            break;
        case 1:
            buf[at] ^= (uint8_t)(1u << (rng() % 8));
            break;
        case 2:
            buf[at] = interesting[rng() % sizeof interesting];
            break;
        case 3:
            len = at;
            break;
        case 4:
            if (len < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)rng();
                len++;
            }
            break;
        default: {
            size_t from = rng() % len, span = 1 + rng() % 16;
            if (from + span > len)
                span = len - from;
            if (at + span > len)
                span = len - at;
            memmove(buf + at, buf + from, span);
            break;
        }
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    long runs = 5000;
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-runs=", 6) == 0)
            runs = strtol(argv[i] + 6, NULL, 10);
        else if (strncmp(argv[i], "-seed=", 6) == 0)
            rng_state ^= (uint64_t)strtoull(argv[i] + 6, NULL, 10) * 0x100000001b3ull;
        else if (argv[i][0] != '-')
            add_path(argv[i]);
    }
    if (n_inputs == 0) {
        fprintf(stderr, "no corpus given\n");
        return 2;
    }
    for (size_t i = 0; i < n_inputs; i++)
        run(inputs[i].data, inputs[i].len);
    uint8_t *buf = malloc(FUZZ_MAX_INPUT + 64);
    if (buf == NULL)
        return 2;
    for (long r = 0; r < runs; r++) {
        const input *in = &inputs[(size_t)r % n_inputs];
        size_t len = in->len;
        memcpy(buf, in->data, len);
        len = mutate(buf, len, FUZZ_MAX_INPUT + 64);
        run(buf, len);
    }
    free(buf);
    printf("standalone fuzz driver: %zu corpus files, %ld mutated runs, no crash\n", n_inputs,
           runs);
    for (size_t i = 0; i < n_inputs; i++)
        free(inputs[i].data);
    free(inputs);
    return 0;
}
