#include "engine/ops_reference.h"

#include <algorithm>
#include <cmath>

namespace synth::reference {

std::vector<double> linear(const Tensor& x, const Tensor& w, const Tensor& b, Transpose w_layout) {
    const bool wt = w_layout == Transpose::Yes;
    const int K = x.dim(-1), N = wt ? w.dim(0) : w.dim(1);
    const int64_t R = x.numel() / K;
    std::vector<double> y((size_t)R * N);
    for (int64_t r = 0; r < R; ++r)
        for (int n = 0; n < N; ++n) {
            double s = b.data ? b.data[n] : 0.0;
            for (int k = 0; k < K; ++k)
                s += (double)x.data[r * K + k] * (wt ? w.data[(size_t)n * K + k] : w.data[(size_t)k * N + n]);
            y[(size_t)r * N + n] = s;
        }
    return y;
}

std::vector<double> bmm(const Tensor& a, const Tensor& b, Transpose ta, Transpose tb) {
    const bool at = ta == Transpose::Yes, bt = tb == Transpose::Yes;
    const int Ba = a.dim(0), Bb = b.dim(0), B = std::max(Ba, Bb), H = a.dim(1);
    const int M = at ? a.dim(3) : a.dim(2), K = at ? a.dim(2) : a.dim(3), N = bt ? b.dim(2) : b.dim(3);
    std::vector<double> c((size_t)B * H * M * N);
    for (int bi = 0; bi < B; ++bi)
        for (int h = 0; h < H; ++h) {
            const float* A = a.data + ((size_t)(Ba == 1 ? 0 : bi) * H + h) * M * K;
            const float* Bm = b.data + ((size_t)(Bb == 1 ? 0 : bi) * H + h) * K * N;
            for (int m = 0; m < M; ++m)
                for (int n = 0; n < N; ++n) {
                    double s = 0.0;
                    for (int k = 0; k < K; ++k)
                        s += (double)(at ? A[k * M + m] : A[m * K + k]) * (bt ? Bm[n * K + k] : Bm[k * N + n]);
                    c[(((size_t)bi * H + h) * M + m) * N + n] = s;
                }
        }
    return c;
}

std::vector<double> head_mix(const Tensor& p, const Tensor& v) {
    const int Bp = p.dim(0), H = p.dim(1), Tq = p.dim(2), Tk = p.dim(3), B = v.dim(0), HD = v.dim(2), D = HD / H;
    std::vector<double> out((size_t)B * Tq * HD);
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < H; ++h)
            for (int i = 0; i < Tq; ++i)
                for (int d = 0; d < D; ++d) {
                    double s = 0.0;
                    for (int j = 0; j < Tk; ++j)
                        s += (double)p.data[(((size_t)(Bp == 1 ? 0 : b) * H + h) * Tq + i) * Tk + j] *
                             v.data[((size_t)b * Tk + j) * HD + h * D + d];
                    out[((size_t)b * Tq + i) * HD + h * D + d] = s;
                }
    return out;
}

std::vector<double> gelu(const Tensor& x) {
    std::vector<double> y(x.numel());
    for (int64_t i = 0; i < x.numel(); ++i) {
        const double v = x.data[i];
        y[i] = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
    }
    return y;
}

std::vector<double> softmax(const Tensor& logits, const Mask& mask) {
    const int Bl = logits.dim(0), H = logits.dim(1), Tq = logits.dim(2), Tk = logits.dim(3);
    const int B = mask.key_pad ? mask.batch : Bl;
    std::vector<double> y((size_t)B * H * Tq * Tk, 0.0);
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < H; ++h)
            for (int i = 0; i < Tq; ++i) {
                const float* x = logits.data + (((size_t)(Bl == 1 ? 0 : b) * H + h) * Tq + i) * Tk;
                double* out = y.data() + (((size_t)b * H + h) * Tq + i) * Tk;
                auto allowed = [&](int j) {
                    if (mask.causal && j > i + mask.q_offset) return false;
                    return !(mask.key_pad && mask.key_pad[(size_t)b * Tk + j]);
                };
                double mx = -INFINITY;
                for (int j = 0; j < Tk; ++j)
                    if (allowed(j)) mx = std::max(mx, (double)x[j]);
                if (mx == -INFINITY) continue;  // fully masked row: zeros
                double s = 0.0;
                for (int j = 0; j < Tk; ++j)
                    if (allowed(j)) s += (out[j] = std::exp(x[j] - mx));
                for (int j = 0; j < Tk; ++j) out[j] /= s;
            }
    return y;
}

std::vector<double> glu(const Tensor& x) {
    const int C = x.dim(-1) / 2;
    const int64_t rows = x.numel() / (2 * C);
    std::vector<double> y((size_t)rows * C);
    for (int64_t r = 0; r < rows; ++r)
        for (int c = 0; c < C; ++c)
            y[r * C + c] = (double)x.data[r * 2 * C + c] / (1.0 + std::exp(-(double)x.data[r * 2 * C + C + c]));
    return y;
}

std::vector<double> local_conv(const Tensor& x, const Tensor& w, int pad_left, int q_offset, const uint8_t* key_pad) {
    const int B = x.dim(0), Tk = x.dim(1), C = x.dim(2), H = w.dim(2), K = w.dim(3), Tq = Tk - q_offset;
    const bool shared = w.dim(0) == 1 && w.dim(1) == 1;
    std::vector<double> y((size_t)B * Tq * C, 0.0);
    for (int b = 0; b < B; ++b)
        for (int r = 0; r < Tq; ++r)
            for (int c = 0; c < C; ++c)
                for (int k = 0; k < K; ++k) {
                    const int j = q_offset + r - pad_left + k, h = c / (C / H);
                    if (j < 0 || j >= Tk || (key_pad && key_pad[b * Tk + j])) continue;
                    const size_t wi = ((size_t)(shared ? 0 : b * Tq + r) * H + h) * K + k;
                    y[((size_t)b * Tq + r) * C + c] += (double)w.data[wi] * x.data[((size_t)b * Tk + j) * C + c];
                }
    return y;
}

std::vector<double> layernorm(const Tensor& x, const Tensor& g, const Tensor& b, double eps) {
    const int C = x.dim(-1);
    const int64_t R = x.numel() / C;
    std::vector<double> y(x.numel());
    for (int64_t r = 0; r < R; ++r) {
        const float* xr = x.data + r * C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; ++c) m += xr[c];
        m /= C;
        for (int c = 0; c < C; ++c) v += (xr[c] - m) * (xr[c] - m);
        v /= C;
        for (int c = 0; c < C; ++c) y[r * C + c] = (xr[c] - m) / std::sqrt(v + eps) * g.data[c] + b.data[c];
    }
    return y;
}

CrossEntropy cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets, int ignore, double eps) {
    const int N = logits.dim(0), V = logits.dim(1);
    CrossEntropy r;
    double total = 0.0;
    for (int n = 0; n < N; ++n) {
        if (targets[n] == ignore) continue;
        const float* x = logits.data + (size_t)n * V;
        double s = 0.0;
        for (int v = 0; v < V; ++v) s += std::exp((double)x[v]);
        std::vector<double> logp(V);
        for (int v = 0; v < V; ++v) logp[v] = x[v] - std::log(s);
        double smooth = 0.0;
        for (int v = 0; v < V; ++v) smooth -= logp[v] / V;
        const double nll = -logp[targets[n]];
        total += (1.0 - eps) * nll + eps * smooth;
        r.sum_nll += nll;
        ++r.count;
    }
    r.loss = r.count ? total / r.count : 0.0;
    return r;
}

std::vector<double> head_linear(const Tensor& x, int H, const Tensor& w, const Tensor& b, int n) {
    const int B = x.dim(0), T = x.dim(1), D = x.dim(2) / H, w_heads = w.dim(0), L = w.dim(2);
    std::vector<double> y((size_t)B * H * T * n);
    for (int bi = 0; bi < B; ++bi)
        for (int h = 0; h < H; ++h) {
            const int hw = w_heads == 1 ? 0 : h;
            for (int t = 0; t < T; ++t)
                for (int j = 0; j < n; ++j) {
                    double s = b.data[hw * L + j];
                    for (int d = 0; d < D; ++d)
                        s += (double)x.data[((size_t)bi * T + t) * H * D + h * D + d] *
                             w.data[((size_t)hw * D + d) * L + j];
                    y[(((size_t)bi * H + h) * T + t) * n + j] = s;
                }
        }
    return y;
}

std::vector<double> fd_outer(const Tensor& a_factor, const Tensor& b_factor, int n) {
    const int a = a_factor.dim(-1), b = b_factor.dim(-1);
    const int64_t rows = a_factor.numel() / a;
    std::vector<double> y((size_t)rows * n);
    for (int64_t r = 0; r < rows; ++r)
        for (int j = 0; j < n; ++j) y[r * n + j] = (double)a_factor.data[r * a + j % a] * b_factor.data[r * b + j / a];
    return y;
}

std::vector<double> mix(const std::vector<Tensor>& comps, const Tensor& w) {
    const int C = (int)comps.size(), H = w.dim(0), Tq = comps[0].dim(2), Tk = comps[0].dim(3);
    int B = 1;
    for (const Tensor& c : comps) B = std::max(B, c.dim(0));
    const size_t plane = (size_t)Tq * Tk;
    std::vector<double> y((size_t)B * H * plane, 0.0);
    for (int h = 0; h < H; ++h) {
        double mx = -INFINITY, s = 0.0;
        for (int c = 0; c < C; ++c) mx = std::max(mx, (double)w.data[h * C + c]);
        std::vector<double> alpha(C);
        for (int c = 0; c < C; ++c) s += (alpha[c] = std::exp(w.data[h * C + c] - mx));
        for (int bi = 0; bi < B; ++bi)
            for (int c = 0; c < C; ++c) {
                const float* src = comps[c].data + ((size_t)(comps[c].dim(0) == 1 ? 0 : bi) * H + h) * plane;
                for (size_t k = 0; k < plane; ++k) y[((size_t)bi * H + h) * plane + k] += alpha[c] / s * src[k];
            }
    }
    return y;
}

}  // namespace synth::reference
