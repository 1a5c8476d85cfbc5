/* internal.h - what all of core/'s translation units share. Torch-free on
 * purpose: model_io.cpp, params.cpp, geometry.cpp and status.cpp compile
 * without libtorch headers (fast builds, and the model-artefact fuzz harness
 * links without libtorch). The libtorch stages share engine.h. */
#ifndef CFA_INTERNAL_H
#define CFA_INTERNAL_H

#include "cfa.h"
#include "sha256.h"

#include <memory>
#include <string>
#include <vector>

/* Device-side tensors of a model (descriptor weights, bank); defined in
 * engine.h, where libtorch is. */
struct cfa_model_tensors;

struct cfa_model {
    cfa_params params{};
    std::string backbone_sha256;
    int channels[3] = {0, 0, 0}; /* backbone feature channels c1, c2, c3 */
    int d_out = 0;               /* descriptor output channels */
    int grid_h = 0, grid_w = 0;  /* patch grid (layer1 size of the model input) */
    int n_centres = 0;
    double train_loss = 0.0;
    std::vector<float> weight;   /* d_out x (c1 + c2 + c3 + 2), row-major */
    std::vector<float> bias;     /* d_out */
    std::vector<float> bank;     /* n_centres x d_out */
    std::shared_ptr<cfa_model_tensors> tensors; /* set by cfa_engine_attach */
    /* CFA++: the resize-only partner (params.ensemble == 1), same resize,
     * no crop, its own descriptor and bank. */
    std::unique_ptr<cfa_model> partner;
    /* the edge profile (edge.cpp): the map is divided by edge_ratio[d] at
     * distance d to the nearest edge (the last one for farther); empty:
     * none. Saved with the model (format version 2). */
    std::vector<float> edge_ratio;

    int d_in() const { return channels[0] + channels[1] + channels[2]; }
};

/* status.cpp */
cfa_status cfa_fail(cfa_status s, const std::string &msg);
void cfa_clear_error();
void cfa_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* hash of a file's contents as 64 hex chars; "" on I/O error */
std::string cfa_sha256_file(const char *path);

/* params.cpp: params validation shared by training and artefact parsing;
 * returns "" if valid, else the reason. */
std::string cfa_params_check(const cfa_params &p);

/* geometry.cpp: top-left corner of the centre crop in the resize frame
 * (0, 0 without a crop). */
namespace cfa {
void crop_offsets(const cfa_params &p, int *oy, int *ox);
/* edge.cpp: divides a model-geometry map by the model's edge profile */
void apply_edge_profile(const cfa_model &m, float *map, int w, int h);
}

/* model_io.cpp: parse without touching libtorch (no tensors attached). */
cfa_status cfa_model_parse(const void *buf, size_t len, cfa_model **out);

#endif
