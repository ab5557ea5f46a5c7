#include "engine/params.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "base/rng.h"

namespace synth {

ParamStore::~ParamStore() {
    std::free(data_);
    std::free(grad_);
}

InitSpec InitSpec::glorot(int64_t fan_in, int64_t fan_out) {
    InitSpec s(Init::GlorotUniform);
    s.fan_in = fan_in;
    s.fan_out = fan_out;
    return s;
}

Tensor* ParamStore::add(const std::string& name, const Shape& shape, InitSpec init, Decay decay, Trainable trainable) {
    SYNTH_CHECK(!final_, "parameter ", name, " declared after finalize()");
    SYNTH_CHECK(!find(name), "parameter ", name, " declared twice");
    for (int d : shape) SYNTH_CHECK(d > 0, "parameter ", name, " has a non-positive dimension");
    params_.push_back(Param{name, shape, init, trainable == Trainable::Yes, decay == Decay::Yes, 0, Tensor{}});
    Param& p = params_.back();
    p.t.ndim = (int)shape.size();
    for (int i = 0; i < p.t.ndim; ++i) p.t.dims[i] = shape[i];
    return &p.t;
}

void ParamStore::finalize(uint64_t seed) {
    SYNTH_CHECK(!final_, "finalize() called twice");
    size_ = 0;
    for (Param& p : params_) {
        p.offset = size_;
        size_ += (numel_of(p.shape) + 15) & ~int64_t(15);  // 64-byte aligned starts
    }
    data_ = aligned_floats(size_);
    grad_ = aligned_floats(size_);
    Rng rng(seed);
    for (Param& p : params_) {
        const int64_t n = numel_of(p.shape);
        p.t.data = data_ + p.offset;
        p.t.grad = p.trainable ? grad_ + p.offset : nullptr;
        switch (p.init.kind) {
            case Init::Zeros: break;
            case Init::Ones:
                for (int64_t i = 0; i < n; ++i) p.t.data[i] = 1.0f;
                break;
            case Init::Normal: rng.fill_normal(p.t.data, n, 0.0f, p.init.std); break;
            case Init::GlorotUniform: {
                SYNTH_CHECK(p.shape.size() >= 2 || p.init.fan_in > 0, "parameter ", p.name,
                            ": Glorot initialisation needs a matrix or explicit fans");
                const int64_t fan_in = p.init.fan_in > 0 ? p.init.fan_in : p.shape[p.shape.size() - 2];
                const int64_t fan_out = p.init.fan_out > 0 ? p.init.fan_out : p.shape.back();
                float lim = std::sqrt(6.0f / (float)(fan_in + fan_out));
                rng.fill_uniform(p.t.data, n, -lim, lim);
                break;
            }
        }
    }
    final_ = true;
}

void ParamStore::zero_grad() { std::memset(grad_, 0, size_ * sizeof(float)); }

int64_t ParamStore::trainable_count() const {
    int64_t n = 0;
    for (const Param& p : params_)
        if (p.trainable) n += numel_of(p.shape);
    return n;
}

const Param* ParamStore::find(const std::string& name) const {
    for (const Param& p : params_)
        if (p.name == name) return &p;
    return nullptr;
}

}  // namespace synth
