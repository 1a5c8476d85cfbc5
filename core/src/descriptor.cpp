/* descriptor.cpp - the patch descriptor phi (a 1x1 CoordConv over the
 * three pooled feature maps, upsampled to the first one's grid) and the
 * distance blocks between patch features and a bank, which training,
 * k-means and scoring all go through.
 *
 * The 1x1 CoordConv is linear per position and bilinear upsampling is
 * linear per channel, so conv(cat(up(p1), up(p2), up(p3), xy)) equals
 * W1 p1 + up(W2 p2) + up(W3 p3) + Wxy xy + b. Projecting each pooled map at
 * its own resolution costs a quarter (layer2) and a sixteenth (layer3) of
 * projecting the upsampled maps. */
#include "engine.h"

#include <algorithm>

/* The CoordConv's two extra input channels: x then y, each in [-1, 1]. */
at::Tensor cfa::coord_map(int h, int w, c10::Device dev)
{
    at::Tensor xs = at::linspace(-1.0, 1.0, w, f32(dev)).view({1, w}).expand({h, w});
    at::Tensor ys = at::linspace(-1.0, 1.0, h, f32(dev)).view({h, 1}).expand({h, w});
    return at::stack({xs, ys}, 0); /* 2 x h x w: x channel, then y */
}

/* phi: pooled maps (B x c_i x h_i x w_i) -> B x D x h1 x w1. */
at::Tensor cfa::descriptor(const std::vector<at::Tensor> &p, const at::Tensor &weight,
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
at::Tensor cfa::patches(const at::Tensor &phi)
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
void cfa::knn(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq, int k,
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
