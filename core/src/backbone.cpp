/* backbone.cpp - the first stage: loading a TorchScript backbone onto a
 * device at a precision, turning an image into its input tensor, and the
 * forward pass with the 3x3 average pooling of its three feature maps. Also
 * the process-wide libtorch settings (threads, CUDA devices). */
#include "engine.h"

#include <ATen/Parallel.h>
#include <torch/csrc/api/include/torch/cuda.h>
#include <torch/script.h>

using namespace cfa;

/* ---- input ---- */

bool cfa::image_ok(const cfa_image &img)
{
    return (img.rgb != nullptr) != (img.rgb8 != nullptr) && img.width >= 8 && img.height >= 8 && img.width <= 65536 && img.height <= 65536;
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

at::Tensor cfa::preprocess(const cfa_image &img, const cfa_params &p, c10::Device dev)
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
     * full-size copies saved, bit-identical to shrinking a contiguous copy
     * (libtorch 1.13; docs/BENCHMARKS.md). Other devices need the copy, and
     * so does the enlarging kernel, whose output depends on the input's
     * strides. */
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

/* ---- forward ---- */

std::vector<at::Tensor> cfa::backbone_pooled(cfa_backbone *bb, const at::Tensor &x)
{
    /* reduced precision runs the backbone only; its features are widened
     * to float32 below, so descriptor, distances and scores stay float32 */
    std::vector<c10::IValue> in{bb->dtype == at::kFloat ? x : x.to(bb->dtype)};
    c10::IValue out = bb->module->forward(in);
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

/* ---- process-wide settings ---- */

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

/* ---- loading ---- */

/* Casts floating parameters and buffers only: jit's Module::to(dtype)
 * would also convert integer buffers (the channel order index). */
static void cast_floating(torch::jit::Module &module, at::ScalarType dtype)
{
    for (const auto &t : module.named_parameters(true))
        if (t.value.is_floating_point())
            t.value.set_data(t.value.to(dtype));
    for (const auto &t : module.named_buffers(true))
        if (t.value.is_floating_point())
            t.value.set_data(t.value.to(dtype));
}

/* One forward on a small blank image: the channels of the three feature
 * maps, and a check that their resolution decreases. */
static cfa_status probe_channels(cfa_backbone *bb)
{
    c10::InferenceMode guard;
    DeviceScope scope(bb->device);
    std::vector<at::Tensor> f;
    try {
        f = backbone_pooled(bb, at::zeros({1, 3, 64, 64}, f32(bb->device)));
    } catch (const std::exception &e) {
        return cfa_fail(CFA_ERR_BACKBONE, std::string("backbone probe failed: ") + e.what());
    }
    for (int i = 0; i < 3; i++)
        bb->channels[i] = (int)f[i].size(1);
    if (f[0].size(2) < f[1].size(2) || f[1].size(2) < f[2].size(2))
        return cfa_fail(CFA_ERR_BACKBONE, "backbone feature maps must have decreasing resolution");
    return CFA_OK;
}

/* Loads path onto bb->device at bb->dtype (both set by the caller). */
static cfa_status load_module(cfa_backbone *bb, const char *path)
{
    try {
        bb->module = std::make_unique<torch::jit::Module>(torch::jit::load(path, bb->device));
    } catch (const c10::Error &e) {
        return cfa_fail(CFA_ERR_BACKBONE, std::string("cannot load TorchScript backbone ") + path + ": " +
                                              e.what_without_backtrace());
    }
    bb->module->eval();
    if (bb->dtype != at::kFloat)
        cast_floating(*bb->module, bb->dtype);
    return CFA_OK;
}

static cfa_status backbone_load(const char *path, const std::string &full_str, cfa_backbone **out)
{
    /* "DEV" or "DEV/PRECISION", checked as the daemon's --device is */
    char dev_buf[64];
    int prec = 0;
    cfa_status ps = cfa_device_parse(full_str.c_str(), dev_buf, sizeof dev_buf, &prec);
    if (ps != CFA_OK)
        return ps;
    const std::string dev_str = dev_buf;
    const c10::Device dev(dev_str);
    if (dev.is_cuda() && (cfa_cuda_device_count() <= (dev.has_index() ? dev.index() : 0)))
        return cfa_fail(CFA_ERR_DEVICE, "device " + dev_str + " is not available (libtorch CUDA devices: " +
                                            std::to_string(cfa_cuda_device_count()) + ")");
    std::string sha = cfa_sha256_file(path);
    if (sha.empty())
        return cfa_fail(CFA_ERR_IO, std::string("cannot read backbone file ") + path);
    std::unique_ptr<cfa_backbone> bb(new cfa_backbone());
    bb->dtype = prec == 1 ? at::kHalf : prec == 2 ? at::kBFloat16 : at::kFloat;
    bb->device = dev;
    bb->sha256 = sha;
    bb->device_str = full_str;
    cfa_status s = load_module(bb.get(), path);
    if (s == CFA_OK)
        s = probe_channels(bb.get());
    if (s == CFA_OK)
        *out = bb.release();
    return s;
}

extern "C" cfa_status cfa_backbone_load(const char *path, const char *device, cfa_backbone **out)
{
    if (!path || !out)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_backbone_load: NULL argument");
    *out = nullptr;
    try {
        return backbone_load(path, device && *device ? device : "cpu", out);
    } catch (...) {
        return fail_exception("cfa_backbone_load");
    }
}

extern "C" void cfa_backbone_free(cfa_backbone *bb) { delete bb; }
extern "C" const char *cfa_backbone_sha256(const cfa_backbone *bb) { return bb->sha256.c_str(); }
extern "C" const char *cfa_backbone_device(const cfa_backbone *bb) { return bb->device_str.c_str(); }
extern "C" void cfa_backbone_channels(const cfa_backbone *bb, int out[3])
{
    for (int i = 0; i < 3; i++)
        out[i] = bb->channels[i];
}
