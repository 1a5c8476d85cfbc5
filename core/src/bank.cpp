/* bank.cpp - the memory bank of Section 4.2: the seeded RNG, k-means, and
 * the bank itself, either the reference code's per-position mean over the
 * training images reduced by k-means (CFA_BANK_MEAN) or the paper's
 * Algorithm 1, k-means of the first image then an EMA towards each further
 * image (CFA_BANK_EMA). */
#include "engine.h"

#include <cmath>
#include <limits>

using namespace cfa;

/* ---- deterministic RNG (identical on every platform and device) ---- */

uint64_t cfa::Rng::next()
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
double cfa::Rng::uniform() { return (double)(next() >> 11) * (1.0 / 9007199254740992.0); }
double cfa::Rng::normal()
{
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300)
        u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}
uint64_t cfa::Rng::below(uint64_t n) { return n ? next() % n : 0; }

/* ---- k-means ---- */

/* k-means++ seeding: each next centre drawn with probability proportional
 * to its squared distance to the nearest centre so far. xc on the CPU. */
static at::Tensor seed_centres(const at::Tensor &xc, int k, Rng &rng)
{
    const int64_t n = xc.size(0);
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
    return xc.index_select(0, at::tensor(chosen, at::kLong)).clone();
}

/* Lloyd with k-means++ seeding, deterministic for a given rng. */
at::Tensor cfa::kmeans(const at::Tensor &x, int k, int iters, Rng &rng)
{
    const int64_t n = x.size(0);
    if (k >= n)
        return x.clone();
    at::Tensor xc = x.to(at::kCPU).contiguous();
    at::Tensor cent = seed_centres(xc, k, rng);
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

/* ---- the bank ---- */

/* The reference code's bank: phi averaged over the training images per
 * position, then k-means down to n_centres. */
static cfa_status mean_bank(const TrainFeatures &f, const at::Tensor &W, const at::Tensor &b,
                            const cfa_model &m, Rng &rng, const volatile int *cancel, at::Tensor *bank)
{
    const int n = (int)f.pooled.size(), P = m.grid_h * m.grid_w;
    at::Tensor sum;
    for (int i = 0; i < n; i++) {
        if (cancel && *cancel)
            return fail_canceled();
        at::Tensor phi = descriptor(f.batch({i}), W, b, m.channels);
        sum = i == 0 ? phi : sum + phi;
    }
    at::Tensor mean = patches(sum / (double)n);
    *bank = m.n_centres < P ? kmeans(mean, m.n_centres, m.params.kmeans_iters, rng).to(f.device) : mean;
    return CFA_OK;
}

/* Algorithm 1's update for one image (CPU tensors): each centre, in turn,
 * moves towards its nearest patch of z not yet taken by another centre. */
static void ema_update(at::Tensor &bank, const at::Tensor &z, float beta)
{
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

/* The paper's Algorithm 1: k-means of the first image's patches, then an
 * EMA towards each further image. The update runs on the CPU. */
static cfa_status ema_bank(const TrainFeatures &f, const at::Tensor &W, const at::Tensor &b,
                           const cfa_model &m, Rng &rng, const volatile int *cancel, at::Tensor *bank)
{
    const int n = (int)f.pooled.size(), P = m.grid_h * m.grid_w;
    at::Tensor z0 = patches(descriptor(f.batch({0}), W, b, m.channels));
    at::Tensor cpu = (m.n_centres < P ? kmeans(z0, m.n_centres, m.params.kmeans_iters, rng) : z0.clone()).to(at::kCPU);
    for (int i = 1; i < n; i++) {
        if (cancel && *cancel)
            return fail_canceled();
        at::Tensor z = patches(descriptor(f.batch({i}), W, b, m.channels)).to(at::kCPU);
        ema_update(cpu, z, m.params.ema_beta);
    }
    *bank = cpu.to(f.device);
    return CFA_OK;
}

cfa_status cfa::build_bank(const TrainFeatures &f, const at::Tensor &W, const at::Tensor &b,
                           const cfa_model &m, Rng &rng, const volatile int *cancel, at::Tensor *bank)
{
    at::NoGradGuard ng;
    cfa_status s = m.params.bank == CFA_BANK_MEAN ? mean_bank(f, W, b, m, rng, cancel, bank)
                                                  : ema_bank(f, W, b, m, rng, cancel, bank);
    if (s == CFA_OK)
        *bank = bank->contiguous();
    return s;
}
