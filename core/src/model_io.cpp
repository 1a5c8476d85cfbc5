/* model_io.cpp - the model artefact: versioned, checksummed, self-describing.
 *
 * Layout (all little-endian):
 *   "CFAMODEL"            8 bytes magic
 *   u32 version           CFA_MODEL_VERSION
 *   model section, and a second one for the CFA++ partner when params.ensemble:
 *     u32 header_bytes    bytes of the header that follows
 *     header              params (fixed field list), backbone sha256 (64 chars),
 *                         channels[3], d_out, grid_h, grid_w, n_centres, train_loss
 *     f32 weight[d_out * (d_in + 2)], f32 bias[d_out], f32 bank[n_centres * d_out]
 *   version 2 only: u32 n, f32 edge_ratio[n] (the edge profile, edge.cpp;
 *     a model without one is written as version 1, byte for byte as before)
 *   sha256 of everything before it (32 bytes)
 * Fields are written one by one (never a raw struct) so padding and field
 * order of cfa_params never leak into the format. */
#include "internal.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace {

const char MAGIC[8] = {'C', 'F', 'A', 'M', 'O', 'D', 'E', 'L'};
const uint32_t CFA_MODEL_VERSION = 1;
const uint32_t CFA_MODEL_VERSION_EDGE = 2; /* version 1 + the edge profile */
const int MAX_CHANNELS = 1 << 16;
const int MAX_GRID = 4096;

struct Writer {
    std::vector<unsigned char> b;
    void u32(uint32_t v)
    {
        for (int i = 0; i < 4; i++)
            b.push_back((unsigned char)(v >> (8 * i)));
    }
    void u64(uint64_t v)
    {
        for (int i = 0; i < 8; i++)
            b.push_back((unsigned char)(v >> (8 * i)));
    }
    void i32(int32_t v) { u32((uint32_t)v); }
    void f32(float v)
    {
        uint32_t u;
        memcpy(&u, &v, 4);
        u32(u);
    }
    void f64(double v)
    {
        uint64_t u;
        memcpy(&u, &v, 8);
        u64(u);
    }
    void bytes(const void *p, size_t n)
    {
        const unsigned char *c = (const unsigned char *)p;
        b.insert(b.end(), c, c + n);
    }
    void floats(const std::vector<float> &v)
    {
        for (float f : v)
            f32(f);
    }
};

struct Reader {
    const unsigned char *p;
    size_t n, off = 0;
    bool ok = true;
    Reader(const void *buf, size_t len) : p((const unsigned char *)buf), n(len) {}
    bool need(size_t k)
    {
        if (!ok || k > n - off) {
            ok = false;
            return false;
        }
        return true;
    }
    uint32_t u32()
    {
        if (!need(4))
            return 0;
        uint32_t v = 0;
        for (int i = 0; i < 4; i++)
            v |= (uint32_t)p[off + i] << (8 * i);
        off += 4;
        return v;
    }
    uint64_t u64()
    {
        if (!need(8))
            return 0;
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v |= (uint64_t)p[off + i] << (8 * i);
        off += 8;
        return v;
    }
    int32_t i32() { return (int32_t)u32(); }
    float f32()
    {
        uint32_t u = u32();
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    double f64()
    {
        uint64_t u = u64();
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    bool floats(std::vector<float> &v, size_t count)
    {
        if (count > (n - off) / 4 || !need(count * 4))
            return ok = false;
        v.resize(count);
        for (size_t i = 0; i < count; i++)
            v[i] = f32();
        return ok;
    }
};

void write_params(Writer &w, const cfa_params &p)
{
    w.i32(p.resize_h), w.i32(p.resize_w), w.i32(p.crop_h), w.i32(p.crop_w);
    w.i32(p.gamma_c), w.i32(p.gamma_d), w.i32((int32_t)p.bank), w.f32(p.ema_beta);
    w.i32(p.kmeans_iters), w.i32(p.K), w.i32(p.J), w.f32(p.r), w.f32(p.alpha);
    w.f32(p.loss_scale), w.i32(p.epochs), w.i32(p.batch_size), w.f32(p.lr);
    w.f32(p.weight_decay), w.f32(p.blur_sigma), w.u64(p.seed), w.i32(p.feature_half);
    w.i32(p.ensemble);
}

void read_params(Reader &r, cfa_params &p)
{
    p.resize_h = r.i32(), p.resize_w = r.i32(), p.crop_h = r.i32(), p.crop_w = r.i32();
    p.gamma_c = r.i32(), p.gamma_d = r.i32();
    /* an out-of-range value must never reach the enum (undefined behaviour) */
    int32_t bank = r.i32();
    p.bank = bank == (int32_t)CFA_BANK_EMA ? CFA_BANK_EMA : CFA_BANK_MEAN;
    if (bank != (int32_t)CFA_BANK_MEAN && bank != (int32_t)CFA_BANK_EMA)
        r.ok = false;
    p.ema_beta = r.f32();
    p.kmeans_iters = r.i32(), p.K = r.i32(), p.J = r.i32(), p.r = r.f32(), p.alpha = r.f32();
    p.loss_scale = r.f32(), p.epochs = r.i32(), p.batch_size = r.i32(), p.lr = r.f32();
    p.weight_decay = r.f32(), p.blur_sigma = r.f32(), p.seed = r.u64();
    p.feature_half = r.i32();
    p.ensemble = r.i32();
}

bool all_finite(const std::vector<float> &v)
{
    for (float f : v)
        if (!std::isfinite(f))
            return false;
    return true;
}

/* One model's section: header_bytes, header, weight, bias, bank. */
void write_body(Writer &w, const cfa_model &m)
{
    Writer h;
    write_params(h, m.params);
    h.bytes(m.backbone_sha256.data(), 64);
    for (int c : m.channels)
        h.i32(c);
    h.i32(m.d_out), h.i32(m.grid_h), h.i32(m.grid_w), h.i32(m.n_centres);
    h.f64(m.train_loss);
    w.u32((uint32_t)h.b.size());
    w.bytes(h.b.data(), h.b.size());
    w.floats(m.weight);
    w.floats(m.bias);
    w.floats(m.bank);
}

cfa_status parse_body(Reader &r, cfa_model &m)
{
    uint32_t header_bytes = r.u32();
    size_t header_start = r.off;
    read_params(r, m.params);
    if (!r.need(64))
        return cfa_fail(CFA_ERR_FORMAT, "model artefact truncated in header");
    m.backbone_sha256.assign((const char *)r.p + r.off, 64);
    r.off += 64;
    for (int &c : m.channels)
        c = r.i32();
    m.d_out = r.i32(), m.grid_h = r.i32(), m.grid_w = r.i32(), m.n_centres = r.i32();
    m.train_loss = r.f64();
    if (!r.ok || r.off - header_start != header_bytes)
        return cfa_fail(CFA_ERR_FORMAT, "model artefact header has the wrong size");
    std::string why = cfa_params_check(m.params);
    if (!why.empty())
        return cfa_fail(CFA_ERR_FORMAT, "model artefact parameters invalid: " + why);
    for (char ch : m.backbone_sha256)
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return cfa_fail(CFA_ERR_FORMAT, "model artefact backbone hash malformed");
    for (int c : m.channels)
        if (c < 1 || c > MAX_CHANNELS)
            return cfa_fail(CFA_ERR_FORMAT, "model artefact channel count out of range");
    if (m.d_out < 1 || m.d_out > MAX_CHANNELS || m.grid_h < 1 || m.grid_w < 1 || m.grid_h > MAX_GRID ||
        m.grid_w > MAX_GRID || m.n_centres < 1 || (int64_t)m.n_centres > (int64_t)m.grid_h * m.grid_w ||
        m.params.K + m.params.J > m.n_centres)
        return cfa_fail(CFA_ERR_FORMAT, "model artefact dimensions out of range");
    size_t nw = (size_t)m.d_out * (size_t)(m.d_in() + 2);
    size_t nbank = (size_t)m.n_centres * (size_t)m.d_out;
    if ((r.n - r.off) / 4 < nw + (size_t)m.d_out + nbank)
        return cfa_fail(CFA_ERR_FORMAT, "model artefact payload is too short");
    if (!r.floats(m.weight, nw) || !r.floats(m.bias, (size_t)m.d_out) || !r.floats(m.bank, nbank))
        return cfa_fail(CFA_ERR_FORMAT, "model artefact truncated in payload");
    if (!all_finite(m.weight) || !all_finite(m.bias) || !all_finite(m.bank))
        return cfa_fail(CFA_ERR_FORMAT, "model artefact holds non-finite values");
    return CFA_OK;
}

/* Version 2's edge profile: 2..CFA_EDGE_PROFILE_MAX ratios, each finite, at
 * least 1 and at most 1e6 (cfa_model_set_edge_profile's rule). */
cfa_status parse_edge(Reader &r, cfa_model &m)
{
    if (r.n - r.off < 4)
        return cfa_fail(CFA_ERR_FORMAT, "model artefact truncated in its edge profile");
    uint32_t n = r.u32();
    if (n < 2 || n > CFA_EDGE_PROFILE_MAX || (r.n - r.off) / 4 < n)
        return cfa_fail(CFA_ERR_FORMAT, "model artefact's edge profile length out of range");
    if (!r.floats(m.edge_ratio, n))
        return cfa_fail(CFA_ERR_FORMAT, "model artefact truncated in its edge profile");
    for (float v : m.edge_ratio)
        if (!(std::isfinite(v) && v >= 1.0f && v <= 1e6f))
            return cfa_fail(CFA_ERR_FORMAT, "model artefact's edge profile holds a ratio out of range");
    return CFA_OK;
}

} // namespace

extern "C" cfa_status cfa_model_save(const cfa_model *m, void **buf, size_t *len)
{
    if (!m || !buf || !len)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_model_save: NULL argument");
    try {
        Writer w;
        w.bytes(MAGIC, 8);
        const bool edge = !m->edge_ratio.empty();
        w.u32(edge ? CFA_MODEL_VERSION_EDGE : CFA_MODEL_VERSION);
        write_body(w, *m);
        if (m->params.ensemble) {
            if (!m->partner)
                return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_model_save: ensemble model without its partner");
            write_body(w, *m->partner);
        }
        if (edge) {
            w.u32((uint32_t)m->edge_ratio.size());
            for (float v : m->edge_ratio)
                w.f32(v);
        }
        uint8_t digest[SHA256_DIGEST_LEN];
        sha256(w.b.data(), w.b.size(), digest);
        w.bytes(digest, 32);

        void *out = malloc(w.b.size());
        if (!out)
            return cfa_fail(CFA_ERR_NOMEM, "cfa_model_save: out of memory");
        memcpy(out, w.b.data(), w.b.size());
        *buf = out;
        *len = w.b.size();
        return CFA_OK;
    } catch (const std::exception &e) {
        return cfa_fail(CFA_ERR_NOMEM, std::string("cfa_model_save: ") + e.what());
    }
}

cfa_status cfa_model_parse(const void *buf, size_t len, cfa_model **out)
{
    if (!buf || !out)
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_model_load: NULL argument");
    *out = nullptr;
    try {
        if (len < 8 + 4 + 4 + 32 || memcmp(buf, MAGIC, 8) != 0)
            return cfa_fail(CFA_ERR_FORMAT, "not a CFA model artefact (bad magic or too short)");
        uint8_t digest[SHA256_DIGEST_LEN];
        sha256(buf, len - 32, digest);
        if (memcmp(digest, (const unsigned char *)buf + len - 32, 32) != 0)
            return cfa_fail(CFA_ERR_CHECKSUM, "model artefact checksum mismatch (corrupt or truncated)");
        Reader r(buf, len - 32);
        r.off = 8;
        uint32_t version = r.u32();
        if (version != CFA_MODEL_VERSION && version != CFA_MODEL_VERSION_EDGE)
            return cfa_fail(CFA_ERR_VERSION, "model artefact version " + std::to_string(version) +
                                                 " is not supported (this build reads " +
                                                 std::to_string(CFA_MODEL_VERSION) + " and " +
                                                 std::to_string(CFA_MODEL_VERSION_EDGE) + ")");
        std::unique_ptr<cfa_model> m(new cfa_model());
        cfa_status s = parse_body(r, *m);
        if (s != CFA_OK)
            return s;
        if (m->params.ensemble) {
            m->partner.reset(new cfa_model());
            if ((s = parse_body(r, *m->partner)) != CFA_OK)
                return s;
            const cfa_params &pp = m->partner->params;
            if (pp.ensemble || pp.crop_h != 0 || pp.resize_h != m->params.resize_h ||
                pp.resize_w != m->params.resize_w || m->partner->backbone_sha256 != m->backbone_sha256)
                return cfa_fail(CFA_ERR_FORMAT, "model artefact's CFA++ partner does not match its primary");
        }
        if (version == CFA_MODEL_VERSION_EDGE && (s = parse_edge(r, *m)) != CFA_OK)
            return s;
        if (r.off != r.n)
            return cfa_fail(CFA_ERR_FORMAT, "model artefact has trailing bytes");
        *out = m.release();
        return CFA_OK;
    } catch (const std::bad_alloc &) {
        return cfa_fail(CFA_ERR_NOMEM, "cfa_model_load: out of memory");
    } catch (const std::exception &e) {
        return cfa_fail(CFA_ERR_INTERNAL, std::string("cfa_model_load: ") + e.what());
    }
}

extern "C" void cfa_model_free(cfa_model *m) { delete m; }

extern "C" cfa_params cfa_model_params(const cfa_model *m) { return m->params; }
extern "C" const char *cfa_model_backbone_sha256(const cfa_model *m)
{
    return m->backbone_sha256.c_str();
}
extern "C" double cfa_model_train_loss(const cfa_model *m) { return m->train_loss; }
extern "C" int cfa_model_bank_size(const cfa_model *m) { return m->n_centres; }
extern "C" int cfa_model_channels(const cfa_model *m) { return m->d_out; }

extern "C" void cfa_result_clear(cfa_result *r)
{
    if (!r)
        return;
    free(r->map);
    free(r->model_map);
    memset(r, 0, sizeof *r);
}
