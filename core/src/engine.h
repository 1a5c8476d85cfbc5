/* engine.h - internal libtorch-level pieces of the engine, exposed to the
 * core's own unit tests (hand-computed loss, scores, blur). Not for server/. */
#ifndef CFA_ENGINE_H
#define CFA_ENGINE_H

#include "internal.h"

#include <ATen/ATen.h>
#include <torch/script.h>

namespace cfa {

/* splitmix64: the engine's only source of randomness, so a seed gives the
 * same model on every platform and device. */
struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    uint64_t next();
    double uniform();  /* [0, 1) */
    double normal();   /* standard normal (Box-Muller) */
    uint64_t below(uint64_t n);
};

void crop_offsets(const cfa_params &p, int *oy, int *ox);
at::Tensor preprocess(const cfa_image &img, const cfa_params &p, c10::Device dev);
at::Tensor coord_map(int h, int w, c10::Device dev);
at::Tensor descriptor(const std::vector<at::Tensor> &pooled, const at::Tensor &weight,
                      const at::Tensor &bias, const int channels[3]);
at::Tensor patches(const at::Tensor &phi);
void knn(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq, int k,
         at::Tensor *d2_out, at::Tensor *idx_out);
at::Tensor patch_scores(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq, int K);
double loss_and_grad(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq,
                     const cfa_params &p, at::Tensor *grad_z);
at::Tensor gaussian_blur(const at::Tensor &x, float sigma);
at::Tensor score_maps(const at::Tensor &grid_scores, const cfa_params &p);
at::Tensor uncrop(const at::Tensor &maps, const cfa_params &p);
at::Tensor kmeans(const at::Tensor &x, int k, int iters, Rng &rng);

} // namespace cfa

#endif
