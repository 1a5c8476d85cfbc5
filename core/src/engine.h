/* engine.h - what core/'s libtorch translation units share, stage by stage;
 * each group names the file that defines it. Private to core/ and its unit
 * tests (test_core_math.cpp checks the arithmetic against hand-computed
 * tensors); server/ sees only cfa.h.
 *
 * The stages, in the order an image goes through them:
 *   backbone.cpp       loading the backbone, pre-processing, forward + pooling
 *   descriptor.cpp     the patch descriptor phi and the distance blocks (knn)
 *   bank.cpp           the seeded RNG, k-means, the memory bank (mean or EMA)
 *   train.cpp          the loss and its gradient, AdamW, the training run
 *   score.cpp          patch scores, anomaly maps, blur, cfa_score*
 *   model_tensors.cpp  a model's weights and bank on a device, cfa_model_load
 * The torch-free rest (artefact format, parameters, geometry, status) is in
 * internal.h. */
#ifndef CFA_ENGINE_H
#define CFA_ENGINE_H

#include "internal.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

/* TorchScript (torch/script.h) stays in backbone.cpp: the other stages
 * need only ATen, and their compile time is mostly the headers they load
 * (core/CMakeLists.txt). */
namespace torch {
namespace jit {
struct Module;
}
} // namespace torch

struct cfa_backbone {
    std::unique_ptr<torch::jit::Module> module; /* created and freed in backbone.cpp */
    c10::Device device{c10::kCPU};
    std::string sha256;
    std::string device_str;
    at::ScalarType dtype = at::kFloat; /* the backbone's weights and input */
    int channels[3] = {0, 0, 0};
};

/* A model's descriptor and bank on its device, made from cfa_model's
 * vectors (which stay the source of truth) by cfa::attach. */
struct cfa_model_tensors {
    at::Tensor weight; /* d_out x (d_in + 2) */
    at::Tensor bias;   /* d_out */
    at::Tensor bank;   /* n_centres x d_out */
    at::Tensor bank_sq;
    c10::Device device{c10::kCPU};
};

namespace cfa {

inline at::TensorOptions f32(c10::Device d) { return at::TensorOptions().dtype(at::kFloat).device(d); }

/* Makes a CUDA device current on this thread while the engine works on it:
 * a worker on cuda:1 then creates no context on cuda:0. Nothing on CPU. */
struct DeviceScope {
    c10::OptionalDeviceGuard guard;
    explicit DeviceScope(c10::Device d)
    {
        if (d.is_cuda())
            guard.reset_device(d);
    }
};

/* The C boundary: call only inside catch (...). Turns the exception being
 * handled into a status and cfa_last_error() ("fn: what"): out of memory
 * (host or device) is CFA_ERR_NOMEM, anything else CFA_ERR_INTERNAL. One
 * place for the mapping, so every entry point reports alike. */
inline cfa_status fail_exception(const char *fn)
{
    const std::string pre = std::string(fn) + ": ";
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return cfa_fail(CFA_ERR_NOMEM, pre + "out of memory");
    } catch (const c10::OutOfMemoryError &e) { /* a CUDA device's memory */
        return cfa_fail(CFA_ERR_NOMEM, pre + e.what_without_backtrace());
    } catch (const c10::Error &e) {
        return cfa_fail(CFA_ERR_INTERNAL, pre + e.what_without_backtrace());
    } catch (const std::exception &e) {
        return cfa_fail(CFA_ERR_INTERNAL, pre + e.what());
    } catch (...) {
        return cfa_fail(CFA_ERR_INTERNAL, pre + "unknown exception");
    }
}

/* training stopped through the caller's cancel flag */
inline cfa_status fail_canceled() { return cfa_fail(CFA_ERR_CANCELED, "training canceled"); }

/* ---- backbone.cpp ---- */

/* Exactly one of rgb and rgb8, and a size the engine accepts (8..65536). */
bool image_ok(const cfa_image &img);
/* One image resized (and centre-cropped) as p says: 1 x 3 x h x w on dev. */
at::Tensor preprocess(const cfa_image &img, const cfa_params &p, c10::Device dev);
/* The backbone's three feature maps, 3x3 average-pooled, in float32. */
std::vector<at::Tensor> backbone_pooled(cfa_backbone *bb, const at::Tensor &x);

/* ---- descriptor.cpp ---- */

at::Tensor coord_map(int h, int w, c10::Device dev);
at::Tensor descriptor(const std::vector<at::Tensor> &pooled, const at::Tensor &weight,
                      const at::Tensor &bias, const int channels[3]);
at::Tensor patches(const at::Tensor &phi);
void knn(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq, int k,
         at::Tensor *d2_out, at::Tensor *idx_out);

/* ---- bank.cpp ---- */

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

at::Tensor kmeans(const at::Tensor &x, int k, int iters, Rng &rng);

/* The pooled backbone features of the training images, computed once
 * (train.cpp) and read by the bank and by every epoch. */
struct TrainFeatures {
    std::vector<std::array<at::Tensor, 3>> pooled; /* per image; float16 with feature_half */
    c10::Device device{c10::kCPU};
    /* images ids as one batch: three float32 tensors on device */
    std::vector<at::Tensor> batch(const std::vector<int> &ids) const;
};

/* The memory bank from phi of the training images (m.params.bank says how),
 * contiguous on the features' device; fixed from here on. W and b are the
 * initial descriptor. CFA_ERR_CANCELED as soon as *cancel is non-zero. */
cfa_status build_bank(const TrainFeatures &f, const at::Tensor &W, const at::Tensor &b,
                      const cfa_model &m, Rng &rng, const volatile int *cancel, at::Tensor *bank);

/* ---- train.cpp ---- */

double loss_and_grad(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq,
                     const cfa_params &p, at::Tensor *grad_z);

/* ---- score.cpp ---- */

at::Tensor patch_scores(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq, int K);
at::Tensor gaussian_blur(const at::Tensor &x, float sigma);
at::Tensor score_maps(const at::Tensor &grid_scores, const cfa_params &p);
at::Tensor uncrop(const at::Tensor &maps, const cfa_params &p);

/* ---- model_tensors.cpp ---- */

/* Puts m's weights and bank on dev (m->tensors). */
void attach(cfa_model *m, c10::Device dev);

} // namespace cfa

#endif
