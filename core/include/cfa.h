/*
 * cfa.h - the CFA anomaly-detection engine (Coupled-hypersphere-based Feature
 * Adaptation, Lee et al. 2022) behind a C interface.
 *
 * This is the only header of core/ that the rest of the project sees. If a
 * function is not declared here it is not part of the engine's API.
 *
 * Basic usage:
 *
 *     cfa_backbone *bb = NULL;
 *     if (cfa_backbone_load("resnet50.pt", "cpu", &bb) != CFA_OK)
 *         fprintf(stderr, "%s\n", cfa_last_error());
 *
 *     cfa_params p = cfa_default_params();
 *     p.epochs = 30;
 *     cfa_image_source src = { n_images, get_image_cb, release_cb, user };
 *     cfa_model *m = NULL;
 *     cfa_train(bb, &p, &src, progress_cb, user, &cancel_flag, &m);
 *
 *     cfa_result r;
 *     cfa_score(bb, m, &img, 1, &r);      (r.map is r.width x r.height)
 *     cfa_result_clear(&r);
 *
 *     void *buf; size_t len;
 *     cfa_model_save(m, &buf, &len);  ... cfa_free(buf);
 *     cfa_model_free(m);
 *     cfa_backbone_free(bb);
 *
 * Conventions: every function returning cfa_status returns CFA_OK (0) on
 * success; on failure a human-readable message is kept per thread and read
 * with cfa_last_error(). No C++ exception ever crosses this header. Every
 * *_free() accepts NULL.
 */
#ifndef CFA_H
#define CFA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CFA_API __attribute__((visibility("default")))
#else
#define CFA_API
#endif

/* The engine's version, the project's (project(VERSION) in the top-level
 * CMakeLists.txt; core/CMakeLists.txt refuses to configure when the two
 * disagree). CFA_VERSION_NUMBER is major * 10000 + minor * 100 + patch. */
#define CFA_VERSION_MAJOR 0
#define CFA_VERSION_MINOR 1
#define CFA_VERSION_PATCH 0
#define CFA_VERSION_STRING "0.1.0"
#define CFA_VERSION_NUMBER (CFA_VERSION_MAJOR * 10000 + CFA_VERSION_MINOR * 100 + CFA_VERSION_PATCH)

/* The version of the engine linked, which can differ from the CFA_VERSION_*
 * a program was compiled against: "0.1.0", and 100 for 0.1.0. */
CFA_API const char *cfa_version(void);
CFA_API int cfa_version_number(void);

/* Status codes, with their values written out: a value never changes and
 * new codes are only ever appended (programs and logs keep the numbers). */
#define CFA_STATUS_TABLE(X)                                                   \
    X(CFA_OK, 0, "ok")                                                        \
    X(CFA_ERR_INVALID_ARG, 1, "invalid argument")                             \
    X(CFA_ERR_NOMEM, 2, "out of memory")                                      \
    X(CFA_ERR_IO, 3, "input/output error")                                    \
    X(CFA_ERR_BACKBONE, 4, "backbone could not be loaded or run")             \
    X(CFA_ERR_FORMAT, 5, "malformed model artefact")                          \
    X(CFA_ERR_CHECKSUM, 6, "model artefact checksum mismatch")                \
    X(CFA_ERR_VERSION, 7, "unsupported model artefact version")               \
    X(CFA_ERR_BACKBONE_MISMATCH, 8, "model was trained with another backbone")\
    X(CFA_ERR_CANCELED, 9, "operation canceled")                              \
    X(CFA_ERR_DEVICE, 10, "device not available")                             \
    X(CFA_ERR_IMAGE, 11, "image unusable (too small or too large)")           \
    X(CFA_ERR_INTERNAL, 12, "internal error")

typedef enum {
#define CFA_X_ENUM(name, value, msg) name = value,
    CFA_STATUS_TABLE(CFA_X_ENUM)
#undef CFA_X_ENUM
    CFA_STATUS_COUNT
} cfa_status;

/* Static string for a status code; never NULL. */
CFA_API const char *cfa_status_str(cfa_status s);

/* Message of the last failure on the calling thread ("" if none). Valid until
 * the next cfa_* call on this thread. */
CFA_API const char *cfa_last_error(void);

/* Free memory returned by the engine (model buffers). NULL is a no-op. */
CFA_API void cfa_free(void *p);

/* Intra-op threads used by libtorch for the whole process (0 = leave as is).
 * Call once at start-up, before any other call. */
CFA_API void cfa_set_threads(int n);

/* OpenBLAS chooses its kernels from the CPU model when it is loaded and, on
 * CPUs it does not know (common on virtual machines), falls back to SSE3
 * kernels 3-4x slower than the AVX2/AVX-512 ones the CPU has. Call first thing
 * in main(): when the loaded OpenBLAS reports such an old core on a CPU with
 * AVX2 or AVX-512, it sets OPENBLAS_CORETYPE and re-executes the program
 * (argv as given to main) once; otherwise returns 0 at once. Never touches a
 * user's own OPENBLAS_CORETYPE; CFA_BLAS_KEEP=1 turns it off. Returns -1 only
 * when the re-exec failed (the program goes on, slower). */
CFA_API int cfa_blas_fix_cpu(char **argv);

/* Fixes glibc malloc's mmap and trim thresholds (32 MiB, 256 MiB) and keeps
 * every thread on one arena, so that tensors freed after one image are reused
 * for the next instead of being unmapped and faulted in again; without it,
 * whether a process pays ~6,500 page faults per 900 x 900 image depends on
 * its allocation history, and a worker thread's own arena churns through
 * 64 MiB heaps (core/src/malloc_tune.c). Call first thing in main(), before
 * threads. CFA_MALLOC_KEEP=1, or the user's own MALLOC_MMAP_THRESHOLD_ /
 * MALLOC_TRIM_THRESHOLD_ / MALLOC_ARENA_MAX, keep glibc's behaviour. */
CFA_API void cfa_tune_malloc(void);

/* OpenBLAS's core name ("SkylakeX", "Haswell", "Prescott", ...), or NULL when
 * the BLAS in this process is not OpenBLAS. */
CFA_API const char *cfa_blas_core(void);

/* Log sink: the host installs it; level 0 = debug, 1 = info, 2 = warn, 3 = error. */
typedef void (*cfa_log_fn)(int level, const char *msg, void *user);
CFA_API void cfa_log_set(cfa_log_fn fn, void *user);

/* ------------------------------------------------------------------------ */
/* Images: interleaved RGB, row-major, width x height x 3, given either as
 * floats in [0, 1] (rgb) or as bytes (rgb8), byte v standing for v / 255:
 * set exactly one. The engine widens bytes to v / 255.0f itself, so both give
 * bit-identical results; bytes are a quarter of the memory and are widened
 * in parallel (and, on a GPU, after the copy to the device). The engine never
 * frees an image's pixels. */
typedef struct cfa_image {
    int width;
    int height;
    const float *rgb;
    const uint8_t *rgb8;
} cfa_image;

/* ------------------------------------------------------------------------ */
/* Backbone: a TorchScript module whose forward(x) takes N x 3 x H x W RGB in
 * [0, 1] (it does its own normalisation) and returns a tuple of three feature
 * maps at strides 4, 8 and 16.
 * Thread-safety: one backbone may be used by one thread at a time; use one
 * replica per worker. */
typedef struct cfa_backbone cfa_backbone;

/* device: "cpu" or "cuda:N", optionally with the backbone's precision:
 * "cuda:0/fp16", "cpu/bf16" ("/fp32" is the default). Reduced precision
 * applies to the backbone's weights and forward only: its features are
 * widened to float32, and descriptor, distances and scores stay float32.
 * fp16 needs CUDA. On success *out owns the backbone. */
CFA_API cfa_status cfa_backbone_load(const char *path, const char *device,
                                     cfa_backbone **out /* OUT */);
CFA_API void cfa_backbone_free(cfa_backbone *bb);
/* SHA-256 of the backbone file as 64 lowercase hex characters. */
CFA_API const char *cfa_backbone_sha256(const cfa_backbone *bb);
/* Checks a device string, "DEV" or "DEV/PRECISION": DEV is cpu or cuda:N
 * (N 0..63), PRECISION fp32 (the default), bf16, or fp16 (CUDA only). Puts
 * DEV in dev (devlen bytes) and the precision in *precision (0 fp32, 1 fp16,
 * 2 bf16); CFA_ERR_DEVICE with cfa_last_error() saying why otherwise.
 * Torch-free: the daemon's configuration checks --device with it, and
 * cfa_backbone_load() parses with it. dev and precision may be NULL. */
CFA_API cfa_status cfa_device_parse(const char *spec, char *dev, size_t devlen,
                                    int *precision /* OUT */);

/* Device string the backbone runs on ("cpu", "cuda:0"). */
CFA_API const char *cfa_backbone_device(const cfa_backbone *bb);
/* Channels of the three feature maps, probed at load time. */
CFA_API void cfa_backbone_channels(const cfa_backbone *bb, int out[3]);
/* 1 if libtorch was built with CUDA and at least one device is visible. */
CFA_API int cfa_cuda_device_count(void);

/* ------------------------------------------------------------------------ */
/* Parameters. Get defaults from cfa_default_params() (the paper's values)
 * and change what you need. */
typedef enum {
    CFA_BANK_MEAN = 0, /* per-position mean over images, then k-means (reference code) */
    CFA_BANK_EMA = 1   /* the paper's Algorithm 1: k-means of the first image, then EMA */
} cfa_bank_method;

typedef struct cfa_params {
    /* pre-processing */
    int resize_h, resize_w; /* image resized (bilinear) to this, default 256 x 256 */
    int crop_h, crop_w;     /* then centre-cropped to this; 0 = no crop; default 224 */
    /* descriptor and bank */
    int gamma_c;            /* |C| = grid_h * grid_w / gamma_c, default 1 */
    int gamma_d;            /* descriptor channels = D / gamma_d, default 1 */
    cfa_bank_method bank;   /* default CFA_BANK_MEAN */
    float ema_beta;         /* Algorithm 1's EMA factor, default 0.9 */
    int kmeans_iters;       /* default 30 */
    /* loss */
    int K, J;               /* nearest / hard-negative neighbours, default 3, 3 */
    float r;                /* hypersphere radius, default 1e-5 */
    float alpha;            /* repulsion margin, default 0.1 */
    float loss_scale;       /* 1/nu, default 1000 */
    /* optimiser */
    int epochs;             /* default 30 */
    int batch_size;         /* default 4 */
    float lr;               /* default 1e-3 */
    float weight_decay;     /* default 5e-4 */
    /* scoring */
    float blur_sigma;       /* Gaussian on the upsampled map, default 4; 0 = none */
    /* misc */
    uint64_t seed;          /* default 1024 */
    int feature_half;       /* cache training features in float16, default 0 */
    int ensemble;           /* CFA++: also train a resize-only partner model and
                               average the two maps; default 0 (needs a crop) */
} cfa_params;

CFA_API cfa_params cfa_default_params(void);

/* ------------------------------------------------------------------------ */
/* Model: descriptor weights + memory bank + the parameters it was trained with
 * + the backbone's hash. Immutable after creation: one model may be scored
 * from several threads at once (each with its own backbone). */
typedef struct cfa_model cfa_model;

/* Training images come through a callback so that only one decoded image is
 * held at a time. get() fills *out for index i (0 <= i < count) and returns 0,
 * or non-zero on failure; release() (may be NULL) is called once the engine
 * is done with that image. */
typedef struct cfa_image_source {
    int count;
    int (*get)(void *user, int i, cfa_image *out);
    void (*release)(void *user, int i, cfa_image *img);
    void *user;
} cfa_image_source;

typedef struct cfa_progress {
    const char *phase;   /* "features", "bank", "epochs", "done" */
    int epoch;           /* 1-based current epoch (0 before epochs) */
    int epochs;
    double loss;         /* mean loss of the last finished epoch (NAN before) */
    double fraction;     /* overall progress in [0, 1] */
    double feature_seconds; /* wall time of feature extraction so far */
    double epoch_seconds;   /* wall time of bank + epochs so far */
} cfa_progress;

/* Called after each image of feature extraction and after each epoch. */
typedef void (*cfa_progress_fn)(const cfa_progress *p, void *user);

/* Trains a model. cancel (may be NULL) is polled often; when it becomes
 * non-zero training stops and CFA_ERR_CANCELED is returned. The backbone is
 * used only by the calling thread during the call. On success *out is a new
 * model owned by the caller. epochs = 0 gives the no-adaptation baseline
 * (bank from the He-initialised descriptor). */
CFA_API cfa_status cfa_train(cfa_backbone *bb, const cfa_params *params,
                             const cfa_image_source *images,
                             cfa_progress_fn progress, void *user,
                             const volatile int *cancel,
                             cfa_model **out /* OUT */);

CFA_API void cfa_model_free(cfa_model *m);
/* The parameters the model was trained with. */
CFA_API cfa_params cfa_model_params(const cfa_model *m);
/* Hash of the backbone the model was trained with (64 hex chars). */
CFA_API const char *cfa_model_backbone_sha256(const cfa_model *m);
/* Final training loss, memory bank size and descriptor channels. */
CFA_API double cfa_model_train_loss(const cfa_model *m);
CFA_API int cfa_model_bank_size(const cfa_model *m);
CFA_API int cfa_model_channels(const cfa_model *m);

/* Serialise to a new buffer (free with cfa_free). The format is versioned and
 * checksummed and carries the parameters and the backbone's hash. */
CFA_API cfa_status cfa_model_save(const cfa_model *m, void **buf /* OUT */,
                                  size_t *len /* OUT */);
/* Parse a buffer written by cfa_model_save. Any byte string is safe to pass:
 * malformed input returns CFA_ERR_FORMAT / CHECKSUM / VERSION, never crashes.
 * If bb is not NULL the model's backbone hash must equal bb's, else
 * CFA_ERR_BACKBONE_MISMATCH. The model is placed on bb's device (CPU if NULL). */
CFA_API cfa_status cfa_model_load(const void *buf, size_t len,
                                  const cfa_backbone *bb,
                                  cfa_model **out /* OUT */);

/* ------------------------------------------------------------------------ */
/* Scoring. */
typedef struct cfa_result {
    float score;      /* image anomaly score: max of map (image geometry) */
    int width;        /* = the input image's width */
    int height;       /* = the input image's height */
    float *map;       /* width * height anomaly scores, the image's own geometry */
    int model_width;  /* the map in model geometry (after resize and crop), */
    int model_height; /* used for metrics against masks resized the same way */
    float *model_map;
    int resize_width; /* the resize before the crop: with model_map, all that */
    int resize_height;/* cfa_map_to_image needs to give map back              */
} cfa_result;

/* Scores n images (any sizes) with one backbone forward per image size group.
 * out must point to n results; each is filled and owned by the caller, who
 * releases it with cfa_result_clear(). The model's backbone hash must match
 * bb's. Images smaller than 8 x 8 give CFA_ERR_IMAGE. */
CFA_API cfa_status cfa_score(cfa_backbone *bb, const cfa_model *m,
                             const cfa_image *images, int n,
                             cfa_result *out /* OUT: n results */);
CFA_API void cfa_result_clear(cfa_result *r);

/* Scores n images, image i with models[i] (models of different products may
 * be mixed): images whose models share the pre-processing geometry share one
 * backbone forward (dynamic batching across products), then each model runs
 * its own descriptor and scoring. Same results as cfa_score per image. */
CFA_API cfa_status cfa_score_multi(cfa_backbone *bb, const cfa_model *const *models,
                                   const cfa_image *images, int n,
                                   cfa_result *out /* OUT: n results */);

/* Scores the n tiles of one image (issue 13) with model m in ONE backbone
 * forward (cfa_score and cfa_score_multi run forwards of at most 8 images):
 * same results as cfa_score per tile. The caller bounds n (memory grows
 * with it); out must point to n results. */
CFA_API cfa_status cfa_score_tiles(cfa_backbone *bb, const cfa_model *m,
                                   const cfa_image *tiles, int n,
                                   cfa_result *out /* OUT: n results */);

/* The image-geometry map from the model-geometry one: the centre crop is
 * undone by replicating the crop's border into the resize frame
 * (resize_w x resize_h), which is resized bilinearly (PyTorch's
 * align_corners=False rule) to w x h. This is how cfa_score makes
 * cfa_result.map from model_map, so a stored model_map gives the same map
 * again: out (w * h floats) = map, *max_out (may be NULL) = its maximum. */
CFA_API cfa_status cfa_map_to_image(const float *model_map, int model_w, int model_h,
                                    int resize_w, int resize_h, int w, int h,
                                    float *out /* OUT */, float *max_out /* OUT */);

/* The part of a w x h image the model looked at: the pixels whose centres
 * fall inside the centre crop (of model_w x model_h out of the resize frame
 * resize_w x resize_h), as the half-open rectangle [x0, x1) x [y0, y1) in
 * image pixels; the whole image without a crop. Outside it, cfa_map_to_image
 * only replicates the crop's border: nothing there was inspected. */
CFA_API void cfa_model_area(int model_w, int model_h, int resize_w, int resize_h, int w, int h,
                            int rect[4] /* OUT: x0, y0, x1, y1 */);

/* The edge profile (issue 13, core/src/edge.cpp): on good images a model's
 * map rises toward the edges of the backbone's input (zero padding there,
 * few such patches in the compressed bank). A profile is one ratio per
 * distance d to the nearest edge of the model map (the last ratio for every
 * farther pixel): the mean map at d over the mean map of the interior, at
 * least 1. With a profile set, scoring divides model_map by it before map
 * and score are made from it. The daemon fits it on the calibration images:
 *   len = cfa_edge_profile_len(model_w, model_h);   zeroed sum[len], count[len]
 *   cfa_edge_profile_accumulate(&result, len, sum, count);     per image
 *   cfa_edge_profile_finish(sum, count, len, ratio);           0, or -1
 *   cfa_model_set_edge_profile(model, ratio, len);
 * The profile is part of the model: cfa_model_save writes it (format version
 * 2; a model without one stays version 1) and cfa_model_load reads it, so
 * the CLI scores a daemon's model as the daemon does. n 0 removes it; n is
 * 0 or 2..CFA_EDGE_PROFILE_MAX, each ratio in [1, 1e6].
 * cfa_edge_profile_finish takes the rise out only within CFA_EDGE_BAND
 * pixels of the edge (ratio 1 farther in), the band the zero padding
 * reaches; the interior it compares with stays a quarter of the side in. */
#define CFA_EDGE_PROFILE_MAX 512
/* One cell of the backbone's deepest level (stride 16 in the model frame):
 * the features whose own convolutions read the zero padding. A rise farther
 * in is the part's own look near its edge (a chamfer, a rim), where dividing
 * would hide a defect as well (docs/BENCHMARKS.md, "The edge band"). */
#define CFA_EDGE_BAND 16
CFA_API int cfa_edge_profile_len(int model_w, int model_h);
CFA_API void cfa_edge_profile_accumulate(const cfa_result *r, int n, double *sum, double *count);
CFA_API int cfa_edge_profile_finish(const double *sum, const double *count, int n,
                                    float *ratio /* OUT: n */);
CFA_API cfa_status cfa_model_set_edge_profile(cfa_model *m, const float *ratio, int n);

/* Pre-processing exposed for evaluation: resize/crop a mask of w x h uint8 to
 * the model geometry of params with nearest-neighbour sampling. dst must hold
 * model_h * model_w bytes, where model_h/model_w come from cfa_model_geometry. */
CFA_API void cfa_model_geometry(const cfa_params *p, int *model_h /* OUT */,
                                int *model_w /* OUT */);
CFA_API void cfa_mask_to_model(const cfa_params *p, const uint8_t *mask, int w,
                               int h, uint8_t *dst /* OUT */);

#ifdef __cplusplus
}
#endif

#endif /* CFA_H */
