/* train.cpp - training (cfa_train): the loss of Section 5 of CFA.md and its
 * gradient, AdamW, and the run of one model in named steps: features once
 * per image, descriptor initialisation, the memory bank (bank.cpp), the
 * epochs, the model. CFA++ (params.ensemble) trains a second, resize-only
 * model the same way.
 *
 * The loss depends on the distance matrix only through its K + J smallest
 * entries per patch. The matrix is computed without autograd (one GEMM,
 * chunked: knn in descriptor.cpp), and the gradient of the selected squared
 * distances d_ij = |z_i - c_j|^2 is written down directly: dL/dz_i =
 * 2 sum_j g_ij (z_i - c_j). Autograd runs only through the descriptor. */
#include "engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

using namespace cfa;

/* Loss of Section 5 of CFA.md and its gradient with respect to z (rows). */
double cfa::loss_and_grad(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq,
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

namespace {

struct Timer {
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    double seconds() const
    {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
};

/* Gives a training image back to the source however the step ends. */
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

/* Shares of one model's progress: features, bank, then the epochs. */
constexpr double W_FEAT = 0.1, W_BANK = 0.05;

/* Progress of one model. Its fractions are mapped into [off, off + scale]
 * of the whole cfa_train call; "done" is reported only by the last model. */
struct Progress {
    cfa_progress_fn fn;
    void *user;
    double off, scale;
    bool last_stage;
    cfa_progress pr;
    void report() const
    {
        if (!fn || (!last_stage && !strcmp(pr.phase, "done")))
            return;
        cfa_progress scaled = pr;
        scaled.fraction = off + scale * pr.fraction;
        fn(&scaled, user);
    }
};

/* What the steps of one model's training share. */
struct Run {
    cfa_backbone *bb;
    const cfa_params &p;
    const cfa_image_source *images;
    const volatile int *cancel;
    Progress prog;
    Rng rng;
    TrainFeatures feats;
    Timer tf; /* feature extraction */
    Timer te; /* bank and epochs: restarted when the features are done */
    bool canceled() const { return cancel && *cancel; }
};

/* The descriptor being trained and the fixed bank, on the device. */
struct Trainee {
    at::Tensor W, b, bank, bank_sq;
};

} // namespace

std::vector<at::Tensor> cfa::TrainFeatures::batch(const std::vector<int> &ids) const
{
    std::vector<at::Tensor> out;
    for (int l = 0; l < 3; l++) {
        std::vector<at::Tensor> parts;
        for (int i : ids)
            parts.push_back(pooled[i][l]);
        out.push_back(at::cat(parts, 0).to(device, at::kFloat));
    }
    return out;
}

/* 1. Backbone features, once per image, pooled and kept for the bank and
 * every epoch. */
static cfa_status extract_features(Run &r)
{
    const int n = r.images->count;
    const c10::Device dev = r.bb->device;
    r.feats.device = dev;
    r.feats.pooled.resize(n);
    at::NoGradGuard ng;
    for (int i = 0; i < n; i++) {
        if (r.canceled())
            return fail_canceled();
        ImageGuard g{r.images, i};
        if (r.images->get(r.images->user, i, &g.img) != 0)
            return cfa_fail(CFA_ERR_IO, "training image " + std::to_string(i) + " could not be read");
        g.held = true;
        if (!image_ok(g.img))
            return cfa_fail(CFA_ERR_IMAGE, "training image " + std::to_string(i) +
                                                 " is too small or too large, or has not exactly one of rgb and rgb8");
        auto f = backbone_pooled(r.bb, preprocess(g.img, r.p, dev));
        for (int l = 0; l < 3; l++)
            r.feats.pooled[i][l] = r.p.feature_half ? f[l].to(at::kHalf) : f[l];
        r.prog.pr.fraction = W_FEAT * (i + 1) / n;
        r.prog.pr.feature_seconds = r.tf.seconds();
        r.prog.report();
    }
    return CFA_OK;
}

/* 2. The model's shape from the features, and the descriptor's initial
 * weights: He normal, and PyTorch's default bias. */
static cfa_status init_model(Run &r, cfa_model &m, Trainee &t)
{
    const cfa_params &p = r.p;
    const std::array<at::Tensor, 3> &first = r.feats.pooled[0];
    m.params = p;
    m.backbone_sha256 = r.bb->sha256;
    for (int l = 0; l < 3; l++)
        m.channels[l] = (int)first[l].size(1);
    const int din = m.d_in();
    m.d_out = std::max(1, din / p.gamma_d);
    m.grid_h = (int)first[0].size(2);
    m.grid_w = (int)first[0].size(3);
    m.n_centres = std::max(1, m.grid_h * m.grid_w / p.gamma_c);
    if (p.K + p.J > m.n_centres)
        return cfa_fail(CFA_ERR_INVALID_ARG, "K + J exceeds the memory bank size");
    m.weight.resize((size_t)m.d_out * (din + 2));
    m.bias.resize(m.d_out);
    const double fan_in = din + 2;
    for (float &w : m.weight)
        w = (float)(r.rng.normal() * std::sqrt(2.0 / fan_in));
    for (float &b : m.bias)
        b = (float)((r.rng.uniform() * 2.0 - 1.0) / std::sqrt(fan_in));
    const c10::Device dev = r.bb->device;
    t.W = at::from_blob(m.weight.data(), {m.d_out, din + 2}, at::kFloat).to(dev, false, true);
    t.b = at::from_blob(m.bias.data(), {m.d_out}, at::kFloat).to(dev, false, true);
    return CFA_OK;
}

/* 3. The memory bank from phi of the training images, fixed from here on. */
static cfa_status make_bank(Run &r, const cfa_model &m, Trainee &t)
{
    r.prog.pr.phase = "bank";
    r.prog.report();
    cfa_status s = build_bank(r.feats, t.W, t.b, m, r.rng, r.cancel, &t.bank);
    if (s != CFA_OK)
        return s;
    t.bank_sq = (t.bank * t.bank).sum(1);
    r.prog.pr.fraction = W_FEAT + W_BANK;
    r.prog.pr.epoch_seconds = r.te.seconds();
    r.prog.report();
    return CFA_OK;
}

/* One optimiser step on the images ids; returns the batch's loss. */
static double train_batch(const Run &r, const cfa_model &m, Trainee &t, AdamW &opt,
                          const std::vector<int> &ids)
{
    at::Tensor z = patches(descriptor(r.feats.batch(ids), t.W, t.b, m.channels));
    at::Tensor gz;
    double loss;
    {
        at::NoGradGuard ng;
        loss = loss_and_grad(z.detach(), t.bank, t.bank_sq, r.p, &gz);
    }
    z.backward(gz);
    opt.step();
    return loss;
}

/* Fisher-Yates over 0..n-1, drawn from the run's rng. */
static void shuffle(std::vector<int> &order, Rng &rng)
{
    const int n = (int)order.size();
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--)
        std::swap(order[i], order[rng.below((uint64_t)i + 1)]);
}

/* 4. The epochs over the cached features; *last_loss is the mean loss of
 * the last epoch (NAN without epochs). */
static cfa_status run_epochs(Run &r, const cfa_model &m, Trainee &t, double *last_loss)
{
    const cfa_params &p = r.p;
    const int n = (int)r.feats.pooled.size();
    cfa_progress &pr = r.prog.pr;
    pr.phase = "epochs";
    t.W.set_requires_grad(true);
    t.b.set_requires_grad(true);
    AdamW opt({t.W, t.b}, p.lr, p.weight_decay);
    std::vector<int> order(n);
    for (int e = 0; e < p.epochs; e++) {
        shuffle(order, r.rng);
        double loss_sum = 0;
        int batches = 0;
        for (int s = 0; s < n; s += p.batch_size) {
            if (r.canceled())
                return fail_canceled();
            std::vector<int> ids(order.begin() + s, order.begin() + std::min(n, s + p.batch_size));
            loss_sum += train_batch(r, m, t, opt, ids);
            batches++;
            pr.epoch = e + 1;
            pr.fraction = W_FEAT + W_BANK + (1.0 - W_FEAT - W_BANK) * (e + (double)(s + ids.size()) / n) / p.epochs;
        }
        *last_loss = loss_sum / std::max(1, batches);
        pr.loss = *last_loss;
        pr.epoch_seconds = r.te.seconds();
        r.prog.report();
    }
    return CFA_OK;
}

/* 5. The trained descriptor and the bank back into the model's vectors (the
 * source of truth), then onto the device as the model's tensors. */
static void keep_model(cfa_model &m, const Trainee &t, double last_loss, c10::Device dev)
{
    at::NoGradGuard ng;
    at::Tensor wc = t.W.detach().to(at::kCPU).contiguous(), bc = t.b.detach().to(at::kCPU).contiguous(),
               kc = t.bank.to(at::kCPU).contiguous();
    memcpy(m.weight.data(), wc.data_ptr<float>(), m.weight.size() * sizeof(float));
    memcpy(m.bias.data(), bc.data_ptr<float>(), m.bias.size() * sizeof(float));
    m.bank.assign(kc.data_ptr<float>(), kc.data_ptr<float>() + kc.numel());
    m.n_centres = (int)kc.size(0);
    m.train_loss = std::isnan(last_loss) ? 0.0 : last_loss;
    attach(&m, dev);
}

/* One model (the primary, or the CFA++ partner), steps 1 to 5. */
static cfa_status train_one(cfa_backbone *bb, const cfa_params &p, const cfa_image_source *images,
                            const Progress &prog, const volatile int *cancel, cfa_model **out)
{
    try {
        DeviceScope scope(bb->device);
        Run r{bb, p, images, cancel, prog, Rng(p.seed), {}, {}, {}};
        r.prog.pr = cfa_progress{"features", 0, p.epochs, NAN, 0.0, 0.0, 0.0};
        cfa_status s = extract_features(r);
        if (s != CFA_OK)
            return s;
        const double feature_seconds = r.tf.seconds();
        r.te = Timer();
        std::unique_ptr<cfa_model> m(new cfa_model());
        Trainee t;
        double last_loss = NAN;
        if ((s = init_model(r, *m, t)) != CFA_OK || (s = make_bank(r, *m, t)) != CFA_OK ||
            (s = run_epochs(r, *m, t, &last_loss)) != CFA_OK)
            return s;
        keep_model(*m, t, last_loss, bb->device);
        r.prog.pr.phase = "done";
        r.prog.pr.fraction = 1.0;
        r.prog.pr.feature_seconds = feature_seconds;
        r.prog.pr.epoch_seconds = r.te.seconds();
        r.prog.report();
        *out = m.release();
        return CFA_OK;
    } catch (...) {
        return fail_exception("cfa_train");
    }
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
        return train_one(bb, *params, images, Progress{progress, user, 0.0, 1.0, true, {}}, cancel, out);
    /* CFA++: a centre-crop model and a resize-only partner on the same resize */
    cfa_model *primary = nullptr, *partner = nullptr;
    cfa_status s = train_one(bb, *params, images, Progress{progress, user, 0.0, 0.5, false, {}}, cancel, &primary);
    if (s != CFA_OK)
        return s;
    cfa_params pp = *params;
    pp.ensemble = 0;
    pp.crop_h = pp.crop_w = 0;
    s = train_one(bb, pp, images, Progress{progress, user, 0.5, 0.5, true, {}}, cancel, &partner);
    if (s != CFA_OK) {
        cfa_model_free(primary);
        return s;
    }
    primary->partner.reset(partner);
    *out = primary;
    return CFA_OK;
}
