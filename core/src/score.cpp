/* score.cpp - scoring (cfa_score, cfa_score_multi): patch scores against
 * the bank (Eq. 4-5), the score grid upsampled and blurred into the model
 * geometry and put back into the resize frame, and the batching of images
 * whose models share a pre-processing geometry into one backbone forward.
 * The maps in the image's own size are made torch-free (geometry.cpp). */
#include "engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace cfa;

/* ---- patch scores and maps ---- */

/* Eq. 4-5: s = softmin(d)[0] * d[0] over the K nearest Euclidean distances. */
at::Tensor cfa::patch_scores(const at::Tensor &z, const at::Tensor &bank, const at::Tensor &bank_sq, int K)
{
    at::Tensor d2;
    knn(z, bank, bank_sq, K, &d2, nullptr);
    at::Tensor d = d2.sqrt();
    return at::softmax(-d, 1).select(1, 0) * d.select(1, 0);
}

/* Separable Gaussian per channel, radius 4 sigma, reflected border. */
at::Tensor cfa::gaussian_blur(const at::Tensor &x, float sigma)
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
at::Tensor cfa::score_maps(const at::Tensor &grid_scores, const cfa_params &p)
{
    int mh, mw;
    cfa_model_geometry(&p, &mh, &mw);
    at::Tensor m = at::upsample_bilinear2d(grid_scores.unsqueeze(1), {mh, mw}, false);
    return gaussian_blur(m, p.blur_sigma);
}

/* Model-geometry maps (B x 1 x crop) into the resize frame: the crop is
 * undone by replicating the border. Resizing the frame to the image's own
 * size then undoes the resize. */
at::Tensor cfa::uncrop(const at::Tensor &maps, const cfa_params &p)
{
    if (!p.crop_h)
        return maps;
    int oy, ox;
    crop_offsets(p, &oy, &ox);
    return at::replication_pad2d(maps, {ox, p.resize_w - p.crop_w - ox, oy, p.resize_h - p.crop_h - oy});
}

/* ---- batching ---- */

/* One (image, model) pair; frame is its anomaly map in the resize frame
 * (1 x 1 x resize_h x resize_w) once run_jobs is done. */
struct ScoreJob {
    int image;
    const cfa_model *model;
    at::Tensor frame;
};

static bool same_geometry(const cfa_params &a, const cfa_params &b)
{
    return a.resize_h == b.resize_h && a.resize_w == b.resize_w && a.crop_h == b.crop_h && a.crop_w == b.crop_w;
}

/* The next chunk of pending jobs with jobs[j0]'s geometry, marked done. */
static std::vector<size_t> take_group(const std::vector<ScoreJob> &jobs, std::vector<char> &done, size_t j0,
                                      int chunk)
{
    std::vector<size_t> group;
    for (size_t j = j0; j < jobs.size() && (int)group.size() < chunk; j++)
        if (!done[j] && same_geometry(jobs[j].model->params, jobs[j0].model->params)) {
            group.push_back(j);
            done[j] = 1;
        }
    return group;
}

/* The rows of the group's batch (from g0 on) whose job is for model m,
 * marked taken. */
static std::vector<int64_t> take_rows(const std::vector<ScoreJob> &jobs, const std::vector<size_t> &group,
                                      std::vector<char> &taken, size_t g0, const cfa_model *m)
{
    std::vector<int64_t> rows;
    for (size_t g = g0; g < group.size(); g++)
        if (!taken[g] && jobs[group[g]].model == m) {
            rows.push_back((int64_t)g);
            taken[g] = 1;
        }
    return rows;
}

/* Model m's descriptor and scores on its rows of the pooled batch (sub:
 * those rows only), each row's frame into its job. Run in slices of images
 * whose descriptor stays under 24 MiB: a bigger tensor is above glibc's
 * largest mmap threshold (32 MiB) and is mapped and faulted in afresh on
 * every call (docs/BENCHMARKS.md, "Descriptor and scoring in slices"). The
 * backbone forward before it stays one batch. */
static void score_rows(const cfa_model &m, const std::vector<at::Tensor> &sub, const std::vector<int64_t> &rows,
                       const std::vector<size_t> &group, std::vector<ScoreJob> &jobs)
{
    const cfa_model_tensors &t = *m.tensors;
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

/* The frames of all jobs. Jobs whose models share the pre-processing
 * geometry share one backbone forward (up to `chunk` images), whatever
 * product they belong to; each model then runs its descriptor and scoring
 * on its own rows. */
static void run_jobs(cfa_backbone *bb, const cfa_image *images, std::vector<ScoreJob> &jobs, int chunk)
{
    std::vector<char> done(jobs.size(), 0);
    for (size_t j0 = 0; j0 < jobs.size(); j0++) {
        if (done[j0])
            continue;
        std::vector<size_t> group = take_group(jobs, done, j0, chunk);
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
            std::vector<int64_t> rows = take_rows(jobs, group, taken, g0, &m);
            std::vector<at::Tensor> sub = pooled;
            if (rows.size() != group.size()) {
                at::Tensor idx = at::tensor(rows, at::kLong).to(bb->device);
                for (auto &t : sub)
                    t = t.index_select(0, idx);
            }
            score_rows(m, sub, rows, group, jobs);
        }
    }
}

/* ---- the C API ---- */

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

static cfa_status check_inputs(const cfa_backbone *bb, const cfa_model *const *models, const cfa_image *images,
                               int n)
{
    for (int i = 0; i < n; i++) {
        cfa_status st = check_model(bb, models[i]);
        if (st != CFA_OK)
            return st;
        if (!image_ok(images[i]))
            return cfa_fail(CFA_ERR_IMAGE, "image " + std::to_string(i) +
                                                 " is too small (< 8 px) or too large, or has not exactly one of rgb and rgb8");
    }
    return CFA_OK;
}

/* One result from the image's frame (the primary's map, or the CFA++ mean of
 * both models' maps): the model map, and the image map made from it. */
static void fill_result(cfa_result &r, const at::Tensor &frame, const cfa_model &m, const cfa_image &img)
{
    const cfa_params &p = m.params;
    at::Tensor mm = frame;
    if (p.crop_h) {
        int oy, ox;
        crop_offsets(p, &oy, &ox);
        mm = frame.narrow(2, oy, p.crop_h).narrow(3, ox, p.crop_w);
    }
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
    apply_edge_profile(m, r.model_map, r.model_width, r.model_height);
    /* the image-geometry map in plain C from the model map alone, so
     * the daemon can store the small model map and give the same map
     * back later (cfa_map_to_image). The score is the maximum of the
     * map the caller gets (API.md), so an image at or above the
     * threshold always has a region. */
    if (cfa_map_to_image(r.model_map, r.model_width, r.model_height, r.resize_width,
                         r.resize_height, img.width, img.height, r.map, &r.score) != CFA_OK)
        throw std::runtime_error(cfa_last_error());
}

static void score_multi(cfa_backbone *bb, const cfa_model *const *models, const cfa_image *images, int n,
                        cfa_result *out, int chunk)
{
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
    run_jobs(bb, images, jobs, chunk);
    for (int i = 0; i < n; i++) {
        at::Tensor frame = jobs[primary[i]].frame;
        if (partner[i] >= 0)
            frame = 0.5 * (frame + jobs[partner[i]].frame);
        fill_result(out[i], frame, *models[i], images[i]);
    }
}

/* cfa_score_multi with backbone forwards of up to chunk images. */
static cfa_status score_chunked(cfa_backbone *bb, const cfa_model *const *models, const cfa_image *images,
                                int n, cfa_result *out, int chunk)
{
    if (!bb || n < 0 || (n > 0 && (!models || !images || !out)))
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_score: NULL argument");
    for (int i = 0; i < n; i++)
        memset(&out[i], 0, sizeof out[i]);
    cfa_status st = check_inputs(bb, models, images, n);
    if (st != CFA_OK)
        return st;
    try {
        score_multi(bb, models, images, n, out, chunk);
        return CFA_OK;
    } catch (...) {
        for (int i = 0; i < n; i++)
            cfa_result_clear(&out[i]);
        return fail_exception("cfa_score");
    }
}

extern "C" cfa_status cfa_score_multi(cfa_backbone *bb, const cfa_model *const *models,
                                      const cfa_image *images, int n, cfa_result *out)
{
    return score_chunked(bb, models, images, n, out, 8);
}

extern "C" cfa_status cfa_score_tiles(cfa_backbone *bb, const cfa_model *m, const cfa_image *tiles, int n,
                                      cfa_result *out)
{
    if (!m)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_score_tiles: NULL argument");
    std::vector<const cfa_model *> models((size_t)std::max(0, n), m);
    return score_chunked(bb, models.data(), tiles, n, out, std::max(1, n));
}

extern "C" cfa_status cfa_score(cfa_backbone *bb, const cfa_model *m, const cfa_image *images, int n,
                                cfa_result *out)
{
    if (!m)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_score: NULL argument");
    std::vector<const cfa_model *> models((size_t)std::max(0, n), m);
    return cfa_score_multi(bb, models.data(), images, n, out);
}
