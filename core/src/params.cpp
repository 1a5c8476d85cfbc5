/* params.cpp - what callers pass in: the paper's default parameters, the
 * parameter checks shared by training and the artefact parser, and the
 * device strings ("cpu", "cuda:N", with "/fp16", "/bf16"). Torch-free, so
 * the daemon checks its configuration without libtorch. */
#include "internal.h"

#include <cstdlib>
#include <cstring>

extern "C" cfa_params cfa_default_params(void)
{
    cfa_params p;
    p.resize_h = 256;
    p.resize_w = 256;
    p.crop_h = 224;
    p.crop_w = 224;
    p.gamma_c = 1;
    p.gamma_d = 1;
    p.bank = CFA_BANK_MEAN;
    p.ema_beta = 0.9f;
    p.kmeans_iters = 30;
    p.K = 3;
    p.J = 3;
    p.r = 1e-5f;
    p.alpha = 0.1f;
    p.loss_scale = 1000.0f;
    p.epochs = 30;
    p.batch_size = 4;
    p.lr = 1e-3f;
    p.weight_decay = 5e-4f;
    p.blur_sigma = 4.0f;
    p.seed = 1024;
    p.feature_half = 0;
    p.ensemble = 0;
    return p;
}

std::string cfa_params_check(const cfa_params &p)
{
    if (p.resize_h < 16 || p.resize_w < 16 || p.resize_h > 4096 || p.resize_w > 4096)
        return "resize must be within 16..4096";
    if (p.crop_h < 0 || p.crop_w < 0 || p.crop_h > p.resize_h || p.crop_w > p.resize_w)
        return "crop must be within 0..resize";
    if ((p.crop_h == 0) != (p.crop_w == 0))
        return "crop_h and crop_w must both be 0 or both positive";
    if (p.crop_h != 0 && (p.crop_h < 16 || p.crop_w < 16))
        return "crop must be at least 16";
    if (p.gamma_c < 1 || p.gamma_c > 1024 || p.gamma_d < 1 || p.gamma_d > 1024)
        return "gamma_c and gamma_d must be within 1..1024";
    if (p.bank != CFA_BANK_MEAN && p.bank != CFA_BANK_EMA)
        return "unknown bank method";
    if (!(p.ema_beta >= 0.0f && p.ema_beta <= 1.0f))
        return "ema_beta must be within 0..1";
    if (p.kmeans_iters < 0 || p.kmeans_iters > 10000)
        return "kmeans_iters must be within 0..10000";
    if (p.K < 1 || p.J < 0 || p.K > 64 || p.J > 64)
        return "K must be 1..64 and J 0..64";
    if (!(p.r >= 0.0f) || !(p.alpha >= 0.0f) || !(p.loss_scale > 0.0f))
        return "r and alpha must be >= 0, loss_scale > 0";
    if (p.epochs < 0 || p.epochs > 100000)
        return "epochs must be within 0..100000";
    if (p.batch_size < 1 || p.batch_size > 1024)
        return "batch_size must be within 1..1024";
    if (!(p.lr > 0.0f) || !(p.weight_decay >= 0.0f))
        return "lr must be > 0 and weight_decay >= 0";
    if (!(p.blur_sigma >= 0.0f) || p.blur_sigma > 64.0f)
        return "blur_sigma must be within 0..64";
    if (p.feature_half != 0 && p.feature_half != 1)
        return "feature_half must be 0 or 1";
    if (p.ensemble != 0 && p.ensemble != 1)
        return "ensemble must be 0 or 1";
    if (p.ensemble && p.crop_h == 0)
        return "ensemble (CFA++) pairs a centre-crop model with a resize-only one: it needs a crop";
    return "";
}

extern "C" cfa_status cfa_device_parse(const char *spec, char *dev, size_t devlen, int *precision)
{
    const std::string full = spec && *spec ? spec : "cpu";
    std::string d = full, prec = "fp32";
    const size_t slash = full.find('/');
    if (slash != std::string::npos) {
        d = full.substr(0, slash);
        prec = full.substr(slash + 1);
    }
    bool cuda = false;
    if (d != "cpu") {
        const bool prefix = d.size() > 5 && d.compare(0, 5, "cuda:") == 0;
        const char *n = prefix ? d.c_str() + 5 : "";
        char *end = nullptr;
        long idx = *n >= '0' && *n <= '9' ? strtol(n, &end, 10) : -1;
        if (idx < 0 || idx > 63 || end == nullptr || *end != '\0')
            return cfa_fail(CFA_ERR_DEVICE, "unknown device '" + d + "' (use cpu or cuda:N)");
        cuda = true;
    }
    int p;
    if (prec == "fp32")
        p = 0;
    else if (prec == "fp16")
        p = 1;
    else if (prec == "bf16")
        p = 2;
    else
        return cfa_fail(CFA_ERR_DEVICE, "unknown precision '" + prec + "' (use fp32, fp16 or bf16)");
    if (p == 1 && !cuda)
        return cfa_fail(CFA_ERR_DEVICE, "fp16 needs a CUDA device (libtorch's CPU convolutions "
                                        "have no float16); use " + d + "/bf16 or fp32");
    if (dev != nullptr) {
        if (devlen <= d.size())
            return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_device_parse: buffer too small");
        memcpy(dev, d.c_str(), d.size() + 1);
    }
    if (precision != nullptr)
        *precision = p;
    return CFA_OK;
}
