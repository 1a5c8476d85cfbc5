/* model_tensors.cpp - a model on a device: its descriptor weights and bank
 * as tensors (cfa_model_tensors), made from the vectors model_io.cpp
 * parses and training fills, which stay the source of truth; and
 * cfa_model_load, which parses and places a model for a backbone. */
#include "engine.h"

using namespace cfa;

void cfa::attach(cfa_model *m, c10::Device dev)
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
    } catch (const std::exception &e) { /* placing only allocates and copies */
        cfa_model_free(m);
        return cfa_fail(CFA_ERR_NOMEM, std::string("cfa_model_load: ") + e.what());
    } catch (...) {
        cfa_model_free(m);
        return cfa_fail(CFA_ERR_INTERNAL, "cfa_model_load: unknown exception");
    }
    *out = m;
    return CFA_OK;
}
