/* engine.cpp - CFA on libtorch: backbone, descriptor, memory bank, training,
 * scoring. The only translation unit of core/ that includes torch headers
 * besides the CUDA probe, so rebuilding the rest stays cheap.
 *
 * Two identities keep this fast without changing the method:
 *  - The 1x1 CoordConv is linear per position and bilinear upsampling is
 *    linear per channel, so conv(cat(up(p1), up(p2), up(p3), xy)) equals
 *    W1 p1 + up(W2 p2) + up(W3 p3) + Wxy xy + b. Projecting each pooled map
 *    at its own resolution costs a quarter (layer2) and a sixteenth (layer3)
 *    of projecting the upsampled maps.
 *  - The loss depends on the distance matrix only through its K + J smallest
 *    entries per patch. The matrix is computed without autograd (one GEMM,
 *    chunked), and the gradient of the selected squared distances
 *    d_ij = |z_i - c_j|^2 is written down directly: dL/dz_i = 2 sum_j g_ij
 *    (z_i - c_j). Autograd runs only through the descriptor. */
#include "engine.h"

#include <ATen/Parallel.h>
#include <c10/core/DeviceGuard.h>
#include <torch/csrc/api/include/torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

struct cfa_backbone {
    torch::jit::script::Module module;
    c10::Device device{c10::kCPU};
    std::string sha256;
    std::string device_str;
    at::ScalarType dtype = at::kFloat; /* the backbone's weights and input */
    int channels[3] = {0, 0, 0};
};

struct cfa_model_tensors {
    at::Tensor weight; /* d_out x (d_in + 2) */
    at::Tensor bias;   /* d_out */
    at::Tensor bank;   /* n_centres x d_out */
    at::Tensor bank_sq;
    c10::Device device{c10::kCPU};
};

namespace cfa {

/* ---- deterministic RNG (identical on every platform and device) ---- */
uint64_t Rng::next()
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
double Rng::uniform() { return (double)(next() >> 11) * (1.0 / 9007199254740992.0); }
double Rng::normal()
{
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300)
        u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}
uint64_t Rng::below(uint64_t n) { return n ? next() % n : 0; }

static at::TensorOptions f32(c10::Device d) { return at::TensorOptions().dtype(at::kFloat).device(d); }

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

/* ---- pre-processing ---- */
void crop_offsets(const cfa_params &p, int *oy, int *ox)
{
    *oy = p.crop_h ? (p.resize_h - p.crop_h) / 2 : 0;
    *ox = p.crop_w ? (p.resize_w - p.crop_w) / 2 : 0;
}

static at::Tensor resize_bilinear(const at::Tensor &x, int h, int w)
{
    if (x.size(2) == h && x.size(3) == w)
        return x;
    /* Anti-aliased when shrinking (as PIL does); plain bilinear otherwise. */
    if (x.size(2) > h || x.size(3) > w) {
        /* libtorch's CUDA kernel keeps a filter row in shared memory and
         * refuses shrinks of ~90x and more: those run on the CPU */
        if (!x.is_cpu() && (x.size(2) > 64 * h || x.size(3) > 64 * w))
            return at::_upsample_bilinear2d_aa(x.cpu(), {h, w}, false).to(x.device());
        return at::_upsample_bilinear2d_aa(x, {h, w}, false);
    }
    return at::upsample_bilinear2d(x, {h, w}, false);
}

at::Tensor preprocess(const cfa_image &img, const cfa_params &p, c10::Device dev)
{
    at::Tensor t;
    if (img.rgb8 != nullptr) {
        /* bytes: copied to the device as they are (a quarter of the
         * traffic), then widened there. to() keeps the interleaved strides
         * and div_ rounds v / 255.0f exactly as the float path's caller did,
         * so what follows sees the same floats in the same layout. */
        t = at::from_blob((void *)img.rgb8, {img.height, img.width, 3}, at::kByte)
                .permute({2, 0, 1})
                .unsqueeze(0);
        t = t.to(dev).to(at::kFloat).div_(255.0f);
    } else {
        t = at::from_blob((void *)img.rgb, {img.height, img.width, 3}, at::kFloat)
                .permute({2, 0, 1})
                .unsqueeze(0);
    }
    /* On CPU the anti-aliased shrink reads the caller's interleaved pixels
     * through the permuted view and writes a new contiguous tensor: two
     * full-size copies saved (3 ms at 900 x 900), bit-identical to shrinking
     * a contiguous copy (libtorch 1.13). Other devices need the copy, and so
     * does the enlarging kernel, whose output depends on the input's strides. */
    if (!(dev.is_cpu() && (img.height > p.resize_h || img.width > p.resize_w)))
        t = t.to(dev, at::kFloat, false, true).contiguous();
    t = resize_bilinear(t, p.resize_h, p.resize_w);
    if (p.crop_h) {
        int oy, ox;
        crop_offsets(p, &oy, &ox);
        t = t.narrow(2, oy, p.crop_h).narrow(3, ox, p.crop_w);
    }
    return t.contiguous();
}

/* ---- backbone ---- */
std::vector<at::Tensor> backbone_pooled(cfa_backbone *bb, const at::Tensor &x)
{
    /* reduced precision runs the backbone only; its features are widened
     * to float32 below, so descriptor, distances and scores stay float32 */
    std::vector<c10::IValue> in{bb->dtype == at::kFloat ? x : x.to(bb->dtype)};
    c10::IValue out = bb->module.forward(in);
    if (!out.isTuple())
        throw std::runtime_error("backbone forward() must return a tuple of three tensors");
    auto elems = out.toTuple()->elements();
    if (elems.size() != 3)
        throw std::runtime_error("backbone forward() must return exactly three feature maps");
    std::vector<at::Tensor> pooled;
    for (auto &e : elems)
        pooled.push_back(at::avg_pool2d(e.toTensor().to(at::kFloat), {3, 3}, {1, 1}, {1, 1}));
    return pooled;
}

at::Tensor coord_map(int h, int w, c10::Device dev)
{
    at::Tensor xs = at::linspace(-1.0, 1.0, w, f32(dev)).view({1, w}).expand({h, w});
    at::Tensor ys = at::linspace(-1.0, 1.0, h, f32(dev)).view({h, 1}).expand({h, w});
    return at::stack({xs, ys}, 0); /* 2 x h x w: x channel, then y */
}

/* phi: pooled maps (B x c_i x h_i x w_i) -> B x D x h1 x w1. */
at::Tensor descriptor(const std::vector<at::Tensor> &p, const at::Tensor &weight,
                      const at::Tensor &bias, const int channels[3])
{
    const int64_t B = p[0].size(0), H = p[0].size(2), W = p[0].size(3), D = weight.size(0);
    at::Tensor out;
    int64_t col = 0;
    for (int i = 0; i < 3; i++) {
        at::Tensor wi = weight.narrow(1, col, channels[i]);
        col += channels[i];
        const int64_t h = p[i].size(2), w = p[i].size(3);
        at::Tensor y = at::matmul(wi, p[i].reshape({B, channels[i], h * w})).view({B, D, h, w});
        if (h != H || w != W)
            y = at::upsample_bilinear2d(y, {H, W}, false);
        out = i == 0 ? y : out + y;
    }
    at::Tensor xy = coord_map((int)H, (int)W, weight.device()).reshape({2, H * W});
    out = out + at::matmul(weight.narrow(1, col, 2), xy).view({1, D, H, W});
    return out + bias.view({1, D, 1, 1});
}

/* Rows of B x D x H x W as (B*H*W) x D patch features. */
at::Tensor patches(const at::Tensor &phi)
{
    return phi.permute({0, 2, 3, 1}).reshape({-1, phi.size(1)});
}

/* k smallest squared distances of each row of z to the bank, ascending.
 * |z|^2 is the same for a whole row, so the ranking needs only
 * |c|^2 - 2 z.c (one GEMM into a buffer that already holds |c|^2); |z|^2 is
 * added to the k survivors. Chunked so the block stays at 24 MiB whatever the
 * image size: under glibc's largest mmap threshold (32 MiB), so the block is
 * reused from the heap instead of being mapped and faulted in afresh for
 * every chunk (core/src/malloc_tune.c). */
void knn(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq, int k,
         at::Tensor *d2_out, at::Tensor *idx_out)
{
    const int64_t n = z.size(0), m = bank.size(0);
    const int64_t rows = std::max<int64_t>(1, (int64_t)(6 << 20) / std::max<int64_t>(1, m));
    at::Tensor bank_t = bank.t();
    at::Tensor csq = bank_sq.view({1, m});
    std::vector<at::Tensor> vals, idxs;
    for (int64_t s = 0; s < n; s += rows) {
        at::Tensor zc = z.narrow(0, s, std::min(rows, n - s));
        at::Tensor d = at::addmm(csq, zc, bank_t, 1.0, -2.0);
        auto tk = d.topk(k, 1, false, true);
        vals.push_back((std::get<0>(tk) + (zc * zc).sum(1, true)).clamp_min_(0.0));
        if (idx_out)
            idxs.push_back(std::get<1>(tk));
    }
    *d2_out = vals.size() == 1 ? vals[0] : at::cat(vals, 0);
    if (idx_out)
        *idx_out = idxs.size() == 1 ? idxs[0] : at::cat(idxs, 0);
}

/* Eq. 4-5: s = softmin(d)[0] * d[0] over the K nearest Euclidean distances. */
at::Tensor patch_scores(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq, int K)
{
    at::Tensor d2;
    knn(z, bank, bank_sq, K, &d2, nullptr);
    at::Tensor d = d2.sqrt();
    return at::softmax(-d, 1).select(1, 0) * d.select(1, 0);
}

/* Loss of Section 5 of CFA.md and its gradient with respect to z (rows). */
double loss_and_grad(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq,
                     const cfa_params &p, at::Tensor *grad_z)
{
    const int K = p.K, J = p.J, KJ = p.K + p.J;
    const int64_t n = z.size(0), D = z.size(1);
    at::Tensor d2, idx;
    knn(z, bank, bank_sq, KJ, &d2, &idx);
    const double r2 = (double)p.r * (double)p.r;
    at::Tensor att = (d2.narrow(1, 0, K) - r2).clamp_min(0.0);
    double loss = att.sum().item<double>() / ((double)n * K);
    at::Tensor g = at::zeros_like(d2);
    g.narrow(1, 0, K).copy_((d2.narrow(1, 0, K) > r2).to(at::kFloat) * (p.loss_scale / ((double)n * K)));
    if (J > 0) {
        at::Tensor rep_arg = r2 - d2.narrow(1, K, J) - (double)p.alpha;
        loss += rep_arg.clamp_min(0.0).sum().item<double>() / ((double)n * J);
        g.narrow(1, K, J).copy_((rep_arg > 0).to(at::kFloat) * (-p.loss_scale / ((double)n * J)));
    }
    loss *= p.loss_scale;
    if (grad_z) {
        /* dL/dz_i = 2 (sum_j g_ij) z_i - 2 sum_j g_ij c_idx(i,j), gathered in chunks */
        at::Tensor out = at::empty({n, D}, z.options());
        const int64_t rows = std::max<int64_t>(1, (int64_t)(4 << 20) / std::max<int64_t>(1, (int64_t)KJ * D));
        for (int64_t s = 0; s < n; s += rows) {
            int64_t len = std::min(rows, n - s);
            at::Tensor gi = g.narrow(0, s, len);
            at::Tensor sel = bank.index_select(0, idx.narrow(0, s, len).reshape({-1})).view({len, KJ, D});
            at::Tensor pull = at::bmm(gi.unsqueeze(1), sel).squeeze(1);
            out.narrow(0, s, len).copy_(2.0 * (gi.sum(1, true) * z.narrow(0, s, len) - pull));
        }
        *grad_z = out;
    }
    return loss;
}

at::Tensor gaussian_blur(const at::Tensor &x, float sigma)
{
    if (sigma <= 0.0f)
        return x;
    const int radius = (int)(4.0f * sigma + 0.5f);
    const int ks = 2 * radius + 1;
    std::vector<float> k(ks);
    double sum = 0;
    for (int i = 0; i < ks; i++) {
        double v = std::exp(-0.5 * (double)(i - radius) * (i - radius) / ((double)sigma * sigma));
        k[i] = (float)v;
        sum += v;
    }
    for (float &v : k)
        v = (float)(v / sum);
    at::Tensor kt = at::from_blob(k.data(), {ks}, at::kFloat).clone().to(x.device());
    at::Tensor y = x;
    /* reflect padding needs pad < size; fall back to replicate for tiny maps */
    bool reflect = radius < x.size(2) && radius < x.size(3);
    y = reflect ? at::reflection_pad2d(y, {radius, radius, radius, radius})
                : at::replication_pad2d(y, {radius, radius, radius, radius});
    const int64_t C = y.size(1);
    y = at::conv2d(y, kt.view({1, 1, 1, ks}).expand({C, 1, 1, ks}).contiguous(), c10::nullopt, at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, C);
    y = at::conv2d(y, kt.view({1, 1, ks, 1}).expand({C, 1, ks, 1}).contiguous(), c10::nullopt, at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, C);
    return y;
}

/* Patch scores (B x H x W grid) -> maps in model geometry (B x 1 x mh x mw). */
at::Tensor score_maps(const at::Tensor &grid_scores, const cfa_params &p)
{
    int mh, mw;
    cfa_model_geometry(&p, &mh, &mw);
    at::Tensor m = at::upsample_bilinear2d(grid_scores.unsqueeze(1), {mh, mw}, false);
    return gaussian_blur(m, p.blur_sigma);
}

/* Model-geometry maps (B x 1 x crop) into the resize frame: the crop is
 * undone by replicating the border. Resizing the frame to the image's own
 * size then undoes the resize. */
at::Tensor uncrop(const at::Tensor &maps, const cfa_params &p)
{
    if (!p.crop_h)
        return maps;
    int oy, ox;
    crop_offsets(p, &oy, &ox);
    return at::replication_pad2d(maps, {ox, p.resize_w - p.crop_w - ox, oy, p.resize_h - p.crop_h - oy});
}

/* ---- k-means (Lloyd, k-means++ seeding, deterministic) ---- */
at::Tensor kmeans(const at::Tensor &x, int k, int iters, Rng &rng)
{
    const int64_t n = x.size(0);
    if (k >= n)
        return x.clone();
    at::Tensor xc = x.to(at::kCPU).contiguous();
    at::Tensor xsq = (xc * xc).sum(1);
    std::vector<int64_t> chosen;
    chosen.push_back((int64_t)rng.below((uint64_t)n));
    at::Tensor best = at::full({n}, std::numeric_limits<float>::infinity(), f32(c10::kCPU));
    for (int c = 1; c < k; c++) {
        at::Tensor last = xc[chosen.back()];
        at::Tensor d = (xsq - 2.0 * at::mv(xc, last) + (last * last).sum()).clamp_min(0.0);
        best = at::minimum(best, d);
        const float *bp = best.data_ptr<float>();
        double total = 0;
        for (int64_t i = 0; i < n; i++)
            total += bp[i];
        double t = rng.uniform() * total, acc = 0;
        int64_t pick = n - 1;
        for (int64_t i = 0; i < n; i++) {
            acc += bp[i];
            if (acc >= t && bp[i] > 0) {
                pick = i;
                break;
            }
        }
        chosen.push_back(pick);
    }
    at::Tensor cent = xc.index_select(0, at::tensor(chosen, at::kLong)).clone();
    for (int it = 0; it < iters; it++) {
        at::Tensor d2, idx;
        knn(xc, cent, (cent * cent).sum(1), 1, &d2, &idx);
        idx = idx.view({n});
        at::Tensor sums = at::zeros_like(cent).index_add_(0, idx, xc);
        at::Tensor counts = at::zeros({k}, f32(c10::kCPU)).index_add_(0, idx, at::ones({n}, f32(c10::kCPU)));
        at::Tensor moved = cent.clone();
        const float *cp = counts.data_ptr<float>();
        /* empty clusters take the point farthest from its centre */
        at::Tensor far = d2.view({n}).argsort(0, true);
        const int64_t *fp = far.data_ptr<int64_t>();
        int64_t next_far = 0;
        for (int c = 0; c < k; c++) {
            if (cp[c] > 0)
                moved[c].copy_(sums[c] / cp[c]);
            else
                moved[c].copy_(xc[fp[next_far++ % n]]);
        }
        bool converged = at::equal(moved, cent);
        cent = moved;
        if (converged)
            break;
    }
    return cent;
}

} // namespace cfa

using namespace cfa;

/* ---------------------------------------------------------------------- */
/* C API                                                                  */

#define CFA_TRY_BEGIN try {
#define CFA_TRY_END(fn)                                                             \
    }                                                                              \
    catch (const std::bad_alloc &) { return cfa_fail(CFA_ERR_NOMEM, fn ": out of memory"); } \
    catch (const c10::OutOfMemoryError &e) { return cfa_fail(CFA_ERR_NOMEM, std::string(fn ": ") + e.what_without_backtrace()); } \
    catch (const c10::Error &e) { return cfa_fail(CFA_ERR_INTERNAL, std::string(fn ": ") + e.what_without_backtrace()); } \
    catch (const std::exception &e) { return cfa_fail(CFA_ERR_INTERNAL, std::string(fn ": ") + e.what()); }

extern "C" void cfa_set_threads(int n)
{
    if (n <= 0)
        return;
    try {
        at::set_num_threads(n);
    } catch (...) {
    }
    try {
        at::set_num_interop_threads(1);
    } catch (...) {
        /* only settable once per process, before first use */
    }
}

extern "C" int cfa_cuda_device_count(void)
{
    try {
        return torch::cuda::is_available() ? (int)torch::cuda::device_count() : 0;
    } catch (...) {
        return 0;
    }
}

extern "C" cfa_status cfa_backbone_load(const char *path, const char *device, cfa_backbone **out)
{
    if (!path || !out)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_backbone_load: NULL argument");
    *out = nullptr;
    const std::string full_str = device && *device ? device : "cpu";
    CFA_TRY_BEGIN
    /* "DEV" or "DEV/PRECISION", checked as the daemon's --device is */
    char dev_buf[64];
    int prec = 0;
    cfa_status ps = cfa_device_parse(full_str.c_str(), dev_buf, sizeof dev_buf, &prec);
    if (ps != CFA_OK)
        return ps;
    const std::string dev_str = dev_buf;
    const at::ScalarType dtype = prec == 1 ? at::kHalf : prec == 2 ? at::kBFloat16 : at::kFloat;
    const c10::Device dev(dev_str);
    if (dev.is_cuda() && (cfa_cuda_device_count() <= (dev.has_index() ? dev.index() : 0)))
        return cfa_fail(CFA_ERR_DEVICE, "device " + dev_str + " is not available (libtorch CUDA devices: " +
                                            std::to_string(cfa_cuda_device_count()) + ")");
    std::string sha = cfa_sha256_file(path);
    if (sha.empty())
        return cfa_fail(CFA_ERR_IO, std::string("cannot read backbone file ") + path);
    std::unique_ptr<cfa_backbone> bb(new cfa_backbone());
    try {
        bb->module = torch::jit::load(path, dev);
    } catch (const c10::Error &e) {
        return cfa_fail(CFA_ERR_BACKBONE, std::string("cannot load TorchScript backbone ") + path + ": " +
                                              e.what_without_backtrace());
    }
    bb->module.eval();
    if (dtype != at::kFloat) {
        /* floating parameters and buffers only: jit's Module::to(dtype) would
         * also convert integer buffers (the channel order index) */
        for (const auto &t : bb->module.named_parameters(true))
            if (t.value.is_floating_point())
                t.value.set_data(t.value.to(dtype));
        for (const auto &t : bb->module.named_buffers(true))
            if (t.value.is_floating_point())
                t.value.set_data(t.value.to(dtype));
    }
    bb->dtype = dtype;
    bb->device = dev;
    bb->sha256 = sha;
    bb->device_str = full_str;
    {
        c10::InferenceMode guard;
        DeviceScope scope(dev);
        std::vector<at::Tensor> f;
        try {
            f = backbone_pooled(bb.get(), at::zeros({1, 3, 64, 64}, f32(dev)));
        } catch (const std::exception &e) {
            return cfa_fail(CFA_ERR_BACKBONE, std::string("backbone probe failed: ") + e.what());
        }
        for (int i = 0; i < 3; i++)
            bb->channels[i] = (int)f[i].size(1);
        if (f[0].size(2) < f[1].size(2) || f[1].size(2) < f[2].size(2))
            return cfa_fail(CFA_ERR_BACKBONE, "backbone feature maps must have decreasing resolution");
    }
    *out = bb.release();
    return CFA_OK;
    CFA_TRY_END("cfa_backbone_load")
}

extern "C" void cfa_backbone_free(cfa_backbone *bb) { delete bb; }
extern "C" const char *cfa_backbone_sha256(const cfa_backbone *bb) { return bb->sha256.c_str(); }
extern "C" const char *cfa_backbone_device(const cfa_backbone *bb) { return bb->device_str.c_str(); }
extern "C" void cfa_backbone_channels(const cfa_backbone *bb, int out[3])
{
    for (int i = 0; i < 3; i++)
        out[i] = bb->channels[i];
}

/* Device tensors of a model; weight/bias/bank vectors are the source of truth. */
static void attach(cfa_model *m, c10::Device dev)
{
    DeviceScope scope(dev);
    auto t = std::make_shared<cfa_model_tensors>();
    const int64_t din = m->d_in() + 2;
    t->weight = at::from_blob(m->weight.data(), {m->d_out, din}, at::kFloat).to(dev, false, true);
    t->bias = at::from_blob(m->bias.data(), {m->d_out}, at::kFloat).to(dev, false, true);
    t->bank = at::from_blob(m->bank.data(), {m->n_centres, m->d_out}, at::kFloat).to(dev, false, true);
    t->bank_sq = (t->bank * t->bank).sum(1);
    t->device = dev;
    m->tensors = t;
}

extern "C" cfa_status cfa_model_load(const void *buf, size_t len, const cfa_backbone *bb, cfa_model **out)
{
    cfa_model *m = nullptr;
    cfa_status s = cfa_model_parse(buf, len, &m);
    if (s != CFA_OK)
        return s;
    if (bb && m->backbone_sha256 != bb->sha256) {
        std::string msg = "model was trained with backbone " + m->backbone_sha256.substr(0, 12) +
                          "..., this backbone is " + bb->sha256.substr(0, 12) + "...";
        cfa_model_free(m);
        return cfa_fail(CFA_ERR_BACKBONE_MISMATCH, msg);
    }
    if (bb) {
        for (int i = 0; i < 3; i++)
            if (m->channels[i] != bb->channels[i]) {
                cfa_model_free(m);
                return cfa_fail(CFA_ERR_BACKBONE_MISMATCH, "model channels do not match the backbone");
            }
    }
    try {
        c10::InferenceMode guard;
        attach(m, bb ? bb->device : c10::Device(c10::kCPU));
        if (m->partner)
            attach(m->partner.get(), bb ? bb->device : c10::Device(c10::kCPU));
    } catch (const std::exception &e) {
        cfa_model_free(m);
        return cfa_fail(CFA_ERR_NOMEM, std::string("cfa_model_load: ") + e.what());
    }
    *out = m;
    return CFA_OK;
}

namespace {

struct Timer {
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    double seconds() const
    {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
};

struct ImageGuard {
    const cfa_image_source *src;
    int i;
    cfa_image img{};
    bool held = false;
    ~ImageGuard()
    {
        if (held && src->release)
            src->release(src->user, i, &img);
    }
};

bool image_ok(const cfa_image &img)
{
    return (img.rgb != nullptr) != (img.rgb8 != nullptr) && img.width >= 8 && img.height >= 8 && img.width <= 65536 && img.height <= 65536;
}

/* AdamW with amsgrad, as torch.optim.AdamW(amsgrad=True) computes it. */
struct AdamW {
    double lr, wd, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    int64_t t = 0;
    std::vector<at::Tensor> params, m, v, vmax;
    AdamW(std::vector<at::Tensor> ps, double lr_, double wd_) : lr(lr_), wd(wd_), params(std::move(ps))
    {
        for (auto &p : params) {
            m.push_back(at::zeros_like(p));
            v.push_back(at::zeros_like(p));
            vmax.push_back(at::zeros_like(p));
        }
    }
    void step()
    {
        at::NoGradGuard ng;
        t++;
        const double bc1 = 1.0 - std::pow(b1, (double)t), bc2 = 1.0 - std::pow(b2, (double)t);
        for (size_t i = 0; i < params.size(); i++) {
            at::Tensor &p = params[i];
            at::Tensor g = p.grad();
            if (!g.defined())
                continue;
            p.mul_(1.0 - lr * wd);
            m[i].mul_(b1).add_(g, 1.0 - b1);
            v[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
            at::maximum_out(vmax[i], vmax[i], v[i]);
            at::Tensor denom = (vmax[i].sqrt() / std::sqrt(bc2)).add_(eps);
            p.addcdiv_(m[i], denom, -lr / bc1);
            g.zero_();
        }
    }
};

struct Cached {
    at::Tensor p[3];
};

std::vector<at::Tensor> batch_of(const std::vector<Cached> &cache, const std::vector<int> &ids,
                                 c10::Device dev)
{
    std::vector<at::Tensor> out;
    for (int l = 0; l < 3; l++) {
        std::vector<at::Tensor> parts;
        for (int i : ids)
            parts.push_back(cache[i].p[l]);
        out.push_back(at::cat(parts, 0).to(dev, at::kFloat));
    }
    return out;
}

} // namespace

/* One model (the primary, or the CFA++ partner). Progress fractions are
 * mapped into [frac_off, frac_off + frac_scale]; "done" is reported only by
 * the last stage. */
static cfa_status train_one(cfa_backbone *bb, const cfa_params &p, const cfa_image_source *images,
                            cfa_progress_fn progress, void *user, const volatile int *cancel,
                            double frac_off, double frac_scale, bool last_stage, cfa_model **out)
{
    const int n = images->count;
    auto canceled = [&] { return cancel && *cancel; };
    CFA_TRY_BEGIN
    const c10::Device dev = bb->device;
    DeviceScope scope(dev);
    Rng rng(p.seed);
    cfa_progress pr{"features", 0, p.epochs, NAN, 0.0, 0.0, 0.0};
    const double w_feat = 0.1, w_bank = 0.05;
    auto report = [&] {
        if (!progress || (!last_stage && !strcmp(pr.phase, "done")))
            return;
        cfa_progress scaled = pr;
        scaled.fraction = frac_off + frac_scale * pr.fraction;
        progress(&scaled, user);
    };

    /* 1. backbone features, once per image, pooled and cached */
    Timer tf;
    std::vector<Cached> cache(n);
    {
        at::NoGradGuard ng;
        for (int i = 0; i < n; i++) {
            if (canceled())
                return cfa_fail(CFA_ERR_CANCELED, "training canceled");
            ImageGuard g{images, i};
            if (images->get(images->user, i, &g.img) != 0)
                return cfa_fail(CFA_ERR_IO, "training image " + std::to_string(i) + " could not be read");
            g.held = true;
            if (!image_ok(g.img))
                return cfa_fail(CFA_ERR_IMAGE, "training image " + std::to_string(i) +
                                                     " is too small or too large, or has not exactly one of rgb and rgb8");
            auto f = backbone_pooled(bb, preprocess(g.img, p, dev));
            for (int l = 0; l < 3; l++)
                cache[i].p[l] = p.feature_half ? f[l].to(at::kHalf) : f[l];
            pr.fraction = w_feat * (i + 1) / n;
            pr.feature_seconds = tf.seconds();
            report();
        }
    }
    const double feature_seconds = tf.seconds();

    /* 2. descriptor initialisation (He normal weights, PyTorch-default bias) */
    Timer te;
    std::unique_ptr<cfa_model> m(new cfa_model());
    m->params = p;
    m->backbone_sha256 = bb->sha256;
    for (int l = 0; l < 3; l++)
        m->channels[l] = (int)cache[0].p[l].size(1);
    const int din = m->d_in();
    m->d_out = std::max(1, din / p.gamma_d);
    m->grid_h = (int)cache[0].p[0].size(2);
    m->grid_w = (int)cache[0].p[0].size(3);
    const int P = m->grid_h * m->grid_w;
    m->n_centres = std::max(1, P / p.gamma_c);
    if (p.K + p.J > m->n_centres)
        return cfa_fail(CFA_ERR_INVALID_ARG, "K + J exceeds the memory bank size");
    m->weight.resize((size_t)m->d_out * (din + 2));
    m->bias.resize(m->d_out);
    const double fan_in = din + 2;
    for (float &w : m->weight)
        w = (float)(rng.normal() * std::sqrt(2.0 / fan_in));
    for (float &b : m->bias)
        b = (float)((rng.uniform() * 2.0 - 1.0) / std::sqrt(fan_in));
    at::Tensor W = at::from_blob(m->weight.data(), {m->d_out, din + 2}, at::kFloat).to(dev, false, true);
    at::Tensor b = at::from_blob(m->bias.data(), {m->d_out}, at::kFloat).to(dev, false, true);

    /* 3. memory bank from phi of the training images, fixed from here on */
    pr.phase = "bank";
    report();
    at::Tensor bank;
    {
        at::NoGradGuard ng;
        if (p.bank == CFA_BANK_MEAN) {
            at::Tensor sum;
            for (int i = 0; i < n; i++) {
                if (canceled())
                    return cfa_fail(CFA_ERR_CANCELED, "training canceled");
                at::Tensor phi = descriptor(batch_of(cache, {i}, dev), W, b, m->channels);
                sum = i == 0 ? phi : sum + phi;
            }
            at::Tensor mean = patches(sum / (double)n);
            bank = m->n_centres < P ? kmeans(mean, m->n_centres, p.kmeans_iters, rng).to(dev) : mean;
        } else {
            at::Tensor z0 = patches(descriptor(batch_of(cache, {0}, dev), W, b, m->channels));
            bank = (m->n_centres < P ? kmeans(z0, m->n_centres, p.kmeans_iters, rng) : z0.clone()).to(at::kCPU);
            const float beta = p.ema_beta;
            for (int i = 1; i < n; i++) {
                if (canceled())
                    return cfa_fail(CFA_ERR_CANCELED, "training canceled");
                at::Tensor z = patches(descriptor(batch_of(cache, {i}, dev), W, b, m->channels)).to(at::kCPU);
                /* each centre, in turn, moves towards its nearest patch not yet taken */
                at::Tensor d = (bank * bank).sum(1, true) + (z * z).sum(1).view({1, -1});
                d.addmm_(bank, z.t(), 1.0, -2.0);
                const int64_t nc = bank.size(0), np = z.size(0);
                std::vector<char> taken(np, 0);
                const float *dp = d.data_ptr<float>();
                float *bp = bank.data_ptr<float>();
                const float *zp = z.data_ptr<float>();
                const int64_t D = bank.size(1);
                for (int64_t c = 0; c < nc; c++) {
                    int64_t best = -1;
                    float bd = std::numeric_limits<float>::infinity();
                    for (int64_t j = 0; j < np; j++)
                        if (!taken[j] && dp[c * np + j] < bd)
                            bd = dp[c * np + j], best = j;
                    if (best < 0)
                        break;
                    taken[best] = 1;
                    for (int64_t k = 0; k < D; k++)
                        bp[c * D + k] = beta * bp[c * D + k] + (1.0f - beta) * zp[best * D + k];
                }
            }
            bank = bank.to(dev);
        }
    }
    bank = bank.contiguous();
    at::Tensor bank_sq = (bank * bank).sum(1);
    pr.fraction = w_feat + w_bank;
    pr.epoch_seconds = te.seconds();
    report();

    /* 4. epochs over the cache */
    pr.phase = "epochs";
    W.set_requires_grad(true);
    b.set_requires_grad(true);
    AdamW opt({W, b}, p.lr, p.weight_decay);
    std::vector<int> order(n);
    double last_loss = NAN;
    for (int e = 0; e < p.epochs; e++) {
        for (int i = 0; i < n; i++)
            order[i] = i;
        for (int i = n - 1; i > 0; i--)
            std::swap(order[i], order[rng.below((uint64_t)i + 1)]);
        double loss_sum = 0;
        int batches = 0;
        for (int s = 0; s < n; s += p.batch_size) {
            if (canceled())
                return cfa_fail(CFA_ERR_CANCELED, "training canceled");
            std::vector<int> ids(order.begin() + s, order.begin() + std::min(n, s + p.batch_size));
            at::Tensor z = patches(descriptor(batch_of(cache, ids, dev), W, b, m->channels));
            at::Tensor gz;
            double loss;
            {
                at::NoGradGuard ng;
                loss = loss_and_grad(z.detach(), bank, bank_sq, p, &gz);
            }
            z.backward(gz);
            opt.step();
            loss_sum += loss;
            batches++;
            pr.epoch = e + 1;
            pr.fraction = w_feat + w_bank + (1.0 - w_feat - w_bank) * (e + (double)(s + ids.size()) / n) / p.epochs;
        }
        last_loss = loss_sum / std::max(1, batches);
        pr.loss = last_loss;
        pr.epoch_seconds = te.seconds();
        report();
    }

    /* 5. the model */
    {
        at::NoGradGuard ng;
        at::Tensor wc = W.detach().to(at::kCPU).contiguous(), bc = b.detach().to(at::kCPU).contiguous(),
                   kc = bank.to(at::kCPU).contiguous();
        memcpy(m->weight.data(), wc.data_ptr<float>(), m->weight.size() * sizeof(float));
        memcpy(m->bias.data(), bc.data_ptr<float>(), m->bias.size() * sizeof(float));
        m->bank.assign(kc.data_ptr<float>(), kc.data_ptr<float>() + kc.numel());
        m->n_centres = (int)kc.size(0);
        m->train_loss = std::isnan(last_loss) ? 0.0 : last_loss;
        attach(m.get(), dev);
    }
    pr.phase = "done";
    pr.fraction = 1.0;
    pr.feature_seconds = feature_seconds;
    pr.epoch_seconds = te.seconds();
    report();
    *out = m.release();
    return CFA_OK;
    CFA_TRY_END("cfa_train")
}

extern "C" cfa_status cfa_train(cfa_backbone *bb, const cfa_params *params, const cfa_image_source *images,
                                cfa_progress_fn progress, void *user, const volatile int *cancel,
                                cfa_model **out)
{
    if (!bb || !params || !images || !images->get || !out)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_train: NULL argument");
    *out = nullptr;
    std::string why = cfa_params_check(*params);
    if (!why.empty())
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_train: " + why);
    if (images->count < 1)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_train: no training images");
    if (!params->ensemble)
        return train_one(bb, *params, images, progress, user, cancel, 0.0, 1.0, true, out);
    /* CFA++: a centre-crop model and a resize-only partner on the same resize */
    cfa_model *primary = nullptr, *partner = nullptr;
    cfa_status s = train_one(bb, *params, images, progress, user, cancel, 0.0, 0.5, false, &primary);
    if (s != CFA_OK)
        return s;
    cfa_params pp = *params;
    pp.ensemble = 0;
    pp.crop_h = pp.crop_w = 0;
    s = train_one(bb, pp, images, progress, user, cancel, 0.5, 0.5, true, &partner);
    if (s != CFA_OK) {
        cfa_model_free(primary);
        return s;
    }
    primary->partner.reset(partner);
    *out = primary;
    return CFA_OK;
}

/* Anomaly maps in the resize frame (1 x 1 x resize_h x resize_w) for a list
 * of (image, model) pairs. Pairs whose models share the pre-processing
 * geometry share one backbone forward (up to `chunk` images), whatever
 * product they belong to; each model then runs its descriptor and scoring
 * on its own rows. */
struct ScoreJob {
    int image;
    const cfa_model *model;
    at::Tensor frame;
};

static bool same_geometry(const cfa_params &a, const cfa_params &b)
{
    return a.resize_h == b.resize_h && a.resize_w == b.resize_w && a.crop_h == b.crop_h && a.crop_w == b.crop_w;
}

static void run_jobs(cfa_backbone *bb, const cfa_image *images, std::vector<ScoreJob> &jobs, int chunk)
{
    std::vector<char> done(jobs.size(), 0);
    for (size_t j0 = 0; j0 < jobs.size(); j0++) {
        if (done[j0])
            continue;
        /* the next chunk of pending jobs with j0's geometry */
        std::vector<size_t> group;
        for (size_t j = j0; j < jobs.size() && (int)group.size() < chunk; j++)
            if (!done[j] && same_geometry(jobs[j].model->params, jobs[j0].model->params)) {
                group.push_back(j);
                done[j] = 1;
            }
        std::vector<at::Tensor> xs;
        for (size_t j : group)
            xs.push_back(preprocess(images[jobs[j].image], jobs[j].model->params, bb->device));
        auto pooled = backbone_pooled(bb, at::cat(xs, 0));
        /* per model: its rows of the batch */
        std::vector<char> taken(group.size(), 0);
        for (size_t g0 = 0; g0 < group.size(); g0++) {
            if (taken[g0])
                continue;
            const cfa_model &m = *jobs[group[g0]].model;
            std::vector<int64_t> rows;
            for (size_t g = g0; g < group.size(); g++)
                if (!taken[g] && jobs[group[g]].model == &m) {
                    rows.push_back((int64_t)g);
                    taken[g] = 1;
                }
            std::vector<at::Tensor> sub = pooled;
            if (rows.size() != group.size()) {
                at::Tensor idx = at::tensor(rows, at::kLong).to(bb->device);
                for (auto &t : sub)
                    t = t.index_select(0, idx);
            }
            const cfa_model_tensors &t = *m.tensors;
            /* descriptor and scoring in slices of images whose descriptor
             * stays under 24 MiB: a bigger tensor is above glibc's largest
             * mmap threshold (32 MiB) and is mapped and faulted in afresh on
             * every call (paper settings at batch 4: 3.2 against 4.0
             * images/s). The backbone forward above stays one batch. */
            const int64_t n_rows = (int64_t)rows.size();
            const int64_t per_image = (int64_t)t.weight.size(0) * sub[0].size(2) * sub[0].size(3) * 4;
            const int64_t slice = std::max<int64_t>(1, (int64_t)(24 << 20) / std::max<int64_t>(1, per_image));
            for (int64_t r0 = 0; r0 < n_rows; r0 += slice) {
                const int64_t len = std::min(slice, n_rows - r0);
                std::vector<at::Tensor> part = sub;
                if (len != n_rows)
                    for (auto &x : part)
                        x = x.narrow(0, r0, len);
                at::Tensor phi = descriptor(part, t.weight, t.bias, m.channels);
                const int64_t bn = phi.size(0), H = phi.size(2), W = phi.size(3);
                at::Tensor sc = patch_scores(patches(phi), t.bank, t.bank_sq, m.params.K).view({bn, H, W});
                at::Tensor frames = uncrop(score_maps(sc, m.params), m.params);
                for (int64_t k = 0; k < len; k++)
                    jobs[group[(size_t)rows[(size_t)(r0 + k)]]].frame = frames.narrow(0, k, 1);
            }
        }
    }
}

static cfa_status check_model(const cfa_backbone *bb, const cfa_model *m)
{
    if (!m)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_score: NULL model");
    if (m->backbone_sha256 != bb->sha256)
        return cfa_fail(CFA_ERR_BACKBONE_MISMATCH, "model was trained with another backbone");
    if (!m->tensors || m->tensors->device != bb->device || (m->partner && !m->partner->tensors))
        return cfa_fail(CFA_ERR_DEVICE, "model is not loaded on the backbone's device");
    return CFA_OK;
}

extern "C" cfa_status cfa_score_multi(cfa_backbone *bb, const cfa_model *const *models,
                                      const cfa_image *images, int n, cfa_result *out)
{
    if (!bb || n < 0 || (n > 0 && (!models || !images || !out)))
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_score: NULL argument");
    for (int i = 0; i < n; i++)
        memset(&out[i], 0, sizeof out[i]);
    for (int i = 0; i < n; i++) {
        cfa_status st = check_model(bb, models[i]);
        if (st != CFA_OK)
            return st;
        if (!image_ok(images[i]))
            return cfa_fail(CFA_ERR_IMAGE, "image " + std::to_string(i) +
                                                 " is too small (< 8 px) or too large, or has not exactly one of rgb and rgb8");
    }
    try {
        c10::InferenceMode guard;
        std::vector<ScoreJob> jobs;
        std::vector<int> primary(n), partner(n, -1);
        for (int i = 0; i < n; i++) {
            primary[i] = (int)jobs.size();
            jobs.push_back({i, models[i], at::Tensor()});
            if (models[i]->partner) {
                partner[i] = (int)jobs.size();
                jobs.push_back({i, models[i]->partner.get(), at::Tensor()});
            }
        }
        DeviceScope scope(bb->device);
        run_jobs(bb, images, jobs, 8);
        for (int i = 0; i < n; i++) {
            const cfa_params &p = models[i]->params;
            at::Tensor frame = jobs[primary[i]].frame;
            if (partner[i] >= 0)
                frame = 0.5 * (frame + jobs[partner[i]].frame);
            at::Tensor mm = frame;
            if (p.crop_h) {
                int oy, ox;
                crop_offsets(p, &oy, &ox);
                mm = frame.narrow(2, oy, p.crop_h).narrow(3, ox, p.crop_w);
            }
            cfa_result &r = out[i];
            const cfa_image &img = images[i];
            at::Tensor mc = mm.to(at::kCPU).contiguous();
            r.model_height = (int)mc.size(2);
            r.model_width = (int)mc.size(3);
            r.resize_height = (int)frame.size(2);
            r.resize_width = (int)frame.size(3);
            r.width = img.width;
            r.height = img.height;
            r.model_map = (float *)malloc(sizeof(float) * mc.numel());
            r.map = (float *)malloc(sizeof(float) * (size_t)img.width * (size_t)img.height);
            if (!r.model_map || !r.map)
                throw std::bad_alloc();
            memcpy(r.model_map, mc.data_ptr<float>(), sizeof(float) * mc.numel());
            /* the image-geometry map in plain C from the model map alone, so
             * the daemon can store the small model map and give the same map
             * back later (cfa_map_to_image). The score is the maximum of the
             * map the caller gets (API.md), so an image at or above the
             * threshold always has a region. */
            if (cfa_map_to_image(r.model_map, r.model_width, r.model_height, r.resize_width,
                                 r.resize_height, img.width, img.height, r.map, &r.score) != CFA_OK)
                throw std::runtime_error(cfa_last_error());
        }
        return CFA_OK;
    } catch (const std::bad_alloc &) {
        for (int i = 0; i < n; i++)
            cfa_result_clear(&out[i]);
        return cfa_fail(CFA_ERR_NOMEM, "cfa_score: out of memory");
    } catch (const c10::OutOfMemoryError &e) { /* a CUDA device's memory */
        for (int i = 0; i < n; i++)
            cfa_result_clear(&out[i]);
        return cfa_fail(CFA_ERR_NOMEM, std::string("cfa_score: ") + e.what_without_backtrace());
    } catch (const std::exception &e) {
        for (int i = 0; i < n; i++)
            cfa_result_clear(&out[i]);
        return cfa_fail(CFA_ERR_INTERNAL, std::string("cfa_score: ") + e.what());
    }
}

extern "C" cfa_status cfa_score(cfa_backbone *bb, const cfa_model *m, const cfa_image *images, int n,
                                cfa_result *out)
{
    if (!m)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_score: NULL argument");
    std::vector<const cfa_model *> models((size_t)std::max(0, n), m);
    return cfa_score_multi(bb, models.data(), images, n, out);
}
