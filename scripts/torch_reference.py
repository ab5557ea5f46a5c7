#!/usr/bin/python3
"""torch_reference.py: synth's decoder-only LM and every Synthesizer variant, in PyTorch.

OPTIONAL DEPENDENCY: PyTorch. synth itself never needs it; only the parity tests
(tests/test_parity.cpp and tests/test_safetensors.cpp, which skip with a message when torch is
missing) and the PyTorch column of `make bench` use this file. On Debian: `apt-get install python3-torch` (or
`SYNTH_WITH_TORCH=1 bash scripts/deps.sh`), then run it with /usr/bin/python3.

    python3 scripts/torch_reference.py parity DIR/*.bin [--verbose]
        Re-computes, in float64, what build/parity computed in float32 -- forward loss and
        logits, the gradient of every parameter, the global gradient norm, and the update of
        one clipped AdamW step -- and compares tensor by tensor. Prints one line per file and
        exits 1 on any mismatch (77 when torch cannot be imported).
    python3 scripts/torch_reference.py safetensors DIR/*.safetensors [--verbose]
        Reads each safetensors file of `build/parity --safetensors` with its own reader, builds the
        model from the file's config metadata, loads the parameters by name and compares its logits
        on the batch of the <variant>.bin beside it with synth's (relative 1e-5). One line per
        file; exits 1 on any mismatch.
    python3 scripts/torch_reference.py bench --variant=R [--seq=128 --batch=32 ...]
        Throughput of the same model in PyTorch, printed as one JSON line with the keys of
        `build/lm --bench` (see scripts/bench.sh).

The model is written from docs/variants.md and mirrors synth's parameterisation exactly: the same
parameter names and shapes as synth's ParamStore (tok_emb, pos_emb, block0.ln1.g,
block0.attn.V.w_q, block0.attn.R.r, block0.attn.mix.w, block0.attn.w_v, ...), weights stored
(in, out) so y = x W, pre-LayerNorm blocks (eps 1e-5), ReLU FFN, no biases on the attention
projections, learned positions, tied output embedding (logits = h tok_emb^T), and every
Synthesizer variant as a source of attention logits mixed inside one causal softmax
(src/attention/synthesizer_attention.h); LightConv and DynamicConv replace the attention with
Wu et al.'s causal convolution layer (src/attention/conv_layer.h), with fairseq's biases on its
two projections.
"""
import argparse
import json
import math
import os
import re
import resource
import struct
import sys
import time

EXIT_NO_TORCH = 77  # "skipped", as automake's test drivers read it (tests/test_parity.cpp does)
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"torch_reference.py: PyTorch is not importable ({e}); install it with "
          "`apt-get install python3-torch` and run this script with /usr/bin/python3", file=sys.stderr)
    sys.exit(EXIT_NO_TORCH)

COMPONENTS = ("V", "D", "R", "Rfix", "FR", "FD")
CONVS = ("LightConv", "DynamicConv")  # sequence mixers of their own: never mixed


def parse_variant(variant):
    """'R+V' -> ['R', 'V'], with synth's errors for unknown or repeated components."""
    parts = variant.split("+")
    for p in parts:
        if p not in COMPONENTS + CONVS:
            raise ValueError(f"unknown attention variant '{p}' in '{variant}' (known: {', '.join(COMPONENTS + CONVS)})")
    if len(set(parts)) != len(parts):
        raise ValueError(f"variant '{variant}' repeats a component")
    if len(parts) > 1 and any(p in CONVS for p in parts):
        raise ValueError(f"variant '{variant}': a convolution cannot be mixed")
    return parts


def conv_kernel_size(kernels, layer):
    """--conv-kernels '3,7,15' -> layer's entry; deeper layers repeat the last."""
    sizes = [int(k) for k in kernels.split(",")]
    return sizes[min(layer, len(sizes) - 1)]


def default_fd_a(L):
    """FD's default a: the divisor of L nearest to sqrt(L), the smaller one on a tie (128 -> 8)."""
    best = 1
    for a in range(1, L + 1):
        if L % a == 0 and abs(a - math.sqrt(L)) < abs(best - math.sqrt(L)):
            best = a
    return best


def normal(*shape, std=0.02):
    return nn.Parameter(torch.randn(*shape) * std)


def split_heads(x, H):  # (B, T, H*D) -> (B, H, T, D)
    B, T, C = x.shape
    return x.view(B, T, H, C // H).transpose(1, 2)


def merge_heads(x):  # (B, H, T, D) -> (B, T, H*D)
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)


# ---- logits sources (docs/variants.md); each returns (B or 1, H, T, T) -------------------

class DotSource(nn.Module):
    """V: Q K^T / sqrt(d_h), the scale applied to Q."""

    def __init__(self, d, H):
        super().__init__()
        self.H = H
        self.w_q, self.w_k = normal(d, d), normal(d, d)

    def forward(self, x):
        q = split_heads(x @ self.w_q * (x.shape[-1] // self.H) ** -0.5, self.H)  # (B, H, T, D)
        return q @ split_heads(x @ self.w_k, self.H).transpose(-1, -2)


class DenseSource(nn.Module):
    """D: B_i = W2_h ReLU(W1 x_i + b1)_h + b2_h (first T of L outputs).
    FD: C_i[j] = A_i[j mod a] * B_i[j // a] with A, B two such second layers (to a and to b)."""

    def __init__(self, d, H, L, factorized, share_w2, fd_a):
        super().__init__()
        self.H, self.factorized = H, factorized
        D = d // H
        self.w1, self.b1 = normal(d, d), nn.Parameter(torch.zeros(d))
        if not factorized:
            Hw = 1 if share_w2 else H
            self.w2, self.b2 = normal(Hw, D, L), nn.Parameter(torch.zeros(Hw, L))
        else:
            a = fd_a or default_fd_a(L)
            if L % a:
                raise ValueError(f"FD's a={a} does not divide the maximum length L={L}")
            self.w_a, self.b_a = normal(H, D, a), nn.Parameter(torch.zeros(H, a))
            self.w_b, self.b_b = normal(H, D, L // a), nn.Parameter(torch.zeros(H, L // a))

    def forward(self, x):
        T = x.shape[1]
        h = split_heads(F.relu(x @ self.w1 + self.b1), self.H)  # (B, H, T, D)
        if not self.factorized:  # W2 (Hw, D, L) with Hw = H or 1 broadcasts over heads
            return h @ self.w2[:, :, :T] + self.b2[:, None, :T]
        A = h @ self.w_a + self.b_a[:, None, :]   # (B, H, T, a)
        Bf = h @ self.w_b + self.b_b[:, None, :]  # (B, H, T, b)
        j = torch.arange(T, device=x.device)
        a = A.shape[-1]
        return A[..., j % a] * Bf[..., j // a]


class RandomSource(nn.Module):
    """R: R_h[i, j], an (H, L, L) parameter sliced to (T, T); Rfix: the same, never trained."""

    def __init__(self, H, L, trainable):
        super().__init__()
        self.r = nn.Parameter(torch.randn(H, L, L) * 0.02, requires_grad=trainable)

    def forward(self, x):
        T = x.shape[1]
        return self.r[None, :, :T, :T]


class FactorizedRandomSource(nn.Module):
    """FR: (R1_h R2_h^T)[i, j], R1, R2 of shape (H, L, k)."""

    def __init__(self, H, L, k):
        super().__init__()
        self.r1, self.r2 = normal(H, L, k), normal(H, L, k)

    def forward(self, x):
        T = x.shape[1]
        return (self.r1[:, :T] @ self.r2[:, :T].transpose(-1, -2))[None]


class ConvParams(nn.Module):
    """The parameters of one LightConv / DynamicConv layer, named as synth's: w_in (d, 2d), b_in,
    w_out (d, d), b_out, and LightConv's kernel (H, K) or DynamicConv's w_kernel (d, H K)."""

    def __init__(self, d, H, K, dynamic):
        super().__init__()
        self.w_in, self.b_in = normal(d, 2 * d), nn.Parameter(torch.zeros(2 * d))
        self.w_out, self.b_out = normal(d, d), nn.Parameter(torch.zeros(d))
        if dynamic:
            self.w_kernel = normal(d, H * K)
        else:
            self.kernel = normal(H, K)


class Conv(nn.Module):
    """Wu et al. (2019)'s layer (fairseq's LightConvDecoderLayer): u = GLU(x W_in + b_in); taps
    softmax_K(kernel_h) (LightConv) or softmax_K(u_i W_k)_h (DynamicConv), channel c using head
    c // (d/H)'s; y_i = sum_k taps_i[k] u_{i-K+1+k} (causal, zeros before the start); y W_out + b_out."""

    def __init__(self, d, H, K, variant):
        super().__init__()
        self.H, self.K, self.name = H, K, variant
        setattr(self, variant, ConvParams(d, H, K, variant == "DynamicConv"))

    def forward(self, x, causal):  # x (B, T, d); the window itself is causal
        p = getattr(self, self.name)
        B, T, d = x.shape
        u = F.glu(x @ p.w_in + p.b_in, dim=-1)  # (B, T, d)
        if self.name == "DynamicConv":
            taps = torch.softmax((u @ p.w_kernel).view(B, T, self.H, self.K), dim=-1)  # (B, T, H, K)
        else:
            taps = torch.softmax(p.kernel, dim=-1)[None, None]  # (1, 1, H, K)
        taps = taps.repeat_interleave(d // self.H, dim=2)  # (B or 1, T or 1, d, K)
        windows = F.pad(u, (0, 0, self.K - 1, 0)).unfold(1, self.K, 1)  # (B, T, d, K): keys i-K+1 .. i
        return (windows * taps).sum(-1) @ p.w_out + p.b_out


class Mix(nn.Module):
    def __init__(self, H, C):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(H, C))  # 0: the mixture starts uniform


class SelfAttention(nn.Module):
    """Sources -> softmax(w)-weighted sum of logits -> one causal softmax -> x W_v -> W_o."""

    def __init__(self, d, H, L, variant, fr_rank=8, fd_a=0, share_w2=False):
        super().__init__()
        self.H, self.names = H, parse_variant(variant)
        for n in self.names:  # attribute names = synth's prefixes: block0.attn.R.r, ...
            if n == "V":
                src = DotSource(d, H)
            elif n in ("D", "FD"):
                src = DenseSource(d, H, L, n == "FD", share_w2, fd_a)
            elif n in ("R", "Rfix"):
                src = RandomSource(H, L, n == "R")
            else:
                src = FactorizedRandomSource(H, L, fr_rank)
            setattr(self, n, src)
        if len(self.names) > 1:
            self.mix = Mix(H, len(self.names))
        self.w_v, self.w_o = normal(d, d), normal(d, d)

    def forward(self, x, causal):  # x (B, T, d), causal (T, T) bool, True = masked
        comps = [getattr(self, n)(x) for n in self.names]
        if len(comps) == 1:
            logits = comps[0]
        else:
            alpha = torch.softmax(self.mix.w, dim=-1)  # (H, C)
            logits = sum(alpha[:, c, None, None] * comps[c] for c in range(len(comps)))
        p = torch.softmax(logits.masked_fill(causal, float("-inf")), dim=-1)  # (B, H, T, T)
        return merge_heads(p @ split_heads(x @ self.w_v, self.H)) @ self.w_o


class LayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.g, self.b = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.g, self.b, eps=1e-5)


class FeedForward(nn.Module):
    def __init__(self, d, d_ff):
        super().__init__()
        self.w1, self.b1 = normal(d, d_ff), nn.Parameter(torch.zeros(d_ff))
        self.w2, self.b2 = normal(d_ff, d), nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return F.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2


class Block(nn.Module):
    def __init__(self, d, H, L, d_ff, variant, layer=0, conv_kernels="3,7,15,31,31,31,31", **attn_kw):
        super().__init__()
        self.ln1, self.ln2 = LayerNorm(d), LayerNorm(d)
        if variant in CONVS:
            self.attn = Conv(d, H, conv_kernel_size(conv_kernels, layer), variant)
        else:
            self.attn = SelfAttention(d, H, L, variant, **attn_kw)
        self.ffn = FeedForward(d, d_ff)

    def forward(self, x, causal):
        x = x + self.attn(self.ln1(x), causal)
        return x + self.ffn(self.ln2(x))


class SynthLM(nn.Module):
    """x = tok_emb[ids] + pos_emb[:T]; pre-LN blocks; logits = LN(x) tok_emb^T, (B*T, V)."""

    def __init__(self, vocab, d, layers, H, d_ff, L, variant, **attn_kw):
        super().__init__()
        self.L = L
        self.tok_emb, self.pos_emb = normal(vocab, d), normal(L, d)
        for l in range(layers):
            setattr(self, f"block{l}", Block(d, H, L, d_ff, variant, layer=l, **attn_kw))
        self.blocks = [getattr(self, f"block{l}") for l in range(layers)]
        self.ln_f = LayerNorm(d)

    def forward(self, ids):  # ids (B, T) int64
        B, T = ids.shape
        if T > self.L:
            raise ValueError(f"sequence of length {T} is longer than the model's maximum length {self.L}")
        x = F.embedding(ids, self.tok_emb) + self.pos_emb[:T]  # (B, T, d)
        causal = torch.ones(T, T, dtype=torch.bool, device=ids.device).triu(1)
        for block in self.blocks:
            x = block(x, causal)
        h = self.ln_f(x).reshape(B * T, -1)
        return h @ self.tok_emb.t()


def adamw_for(model, lr, betas, eps, weight_decay, **kw):
    """torch's AdamW with synth's decay rule: weight matrices (ndim >= 2) decay; biases (b, b1,
    b2, b_a, b_b, whatever their rank), gains and the mixture weights do not; non-trainable
    parameters (Rfix) are not optimized."""
    def decays(name, p):
        last = name.rsplit(".", 1)[-1]
        return p.ndim >= 2 and not name.endswith(".mix.w") and not last.startswith("b")

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if decays(n, p)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, **kw)


# ---- parity: the tensor file written by build/parity ---------------------------------------

def read_tensor_file(path):
    """Returns (meta dict, {name: float32 tensor}). Format: see src/bin/parity.cpp."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"SYNTHPT1":
        raise ValueError(f"{path}: not a synth tensor file (bad magic {data[:8]!r})")
    pos = 8

    def u32():
        nonlocal pos
        (v,) = struct.unpack_from("<I", data, pos)
        pos += 4
        return v

    n = u32()
    meta = dict(line.split("=", 1) for line in data[pos:pos + n].decode().splitlines() if line)
    pos += n
    tensors = {}
    for _ in range(u32()):
        n = u32()
        name = data[pos:pos + n].decode()
        pos += n
        dims = [u32() for _ in range(u32())]
        count = math.prod(dims)
        if pos + 4 * count > len(data):
            raise ValueError(f"{path}: tensor {name} {dims} runs past the end of the file")
        tensors[name] = torch.frombuffer(bytearray(data[pos:pos + 4 * count]), dtype=torch.float32).reshape(dims)
        pos += 4 * count
    if pos != len(data):
        raise ValueError(f"{path}: {len(data) - pos} trailing bytes")
    return meta, tensors


def compare(name, got, want, tol):
    """Max abs error and error relative to the reference's largest entry (a norm-wise relative
    error: entry-wise ratios are meaningless for entries that are zero up to float32 noise)."""
    got, want = got.double(), want.double()
    if got.shape != want.shape:
        return {"name": name, "abs": math.inf, "rel": math.inf, "ok": False, "why": f"shape {list(got.shape)} vs {list(want.shape)}"}
    err = (got - want).abs().max().item() if want.numel() else 0.0
    scale = want.abs().max().item() if want.numel() else 0.0
    rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
    return {"name": name, "abs": err, "rel": rel, "ok": rel <= tol, "why": ""}


def model_from(meta):
    """The float64 SynthLM of synth's model flags: the metadata holds its field table, so the names
    are the flags' (d-model, layers, heads, d-ff, seq, fr-rank, fd-a, share-w2, conv-kernels) plus variant, vocab."""
    return SynthLM(int(meta["vocab"]), int(meta["d-model"]), int(meta["layers"]), int(meta["heads"]),
                   int(meta["d-ff"]), int(meta["seq"]), meta["variant"], fr_rank=int(meta["fr-rank"]),
                   fd_a=int(meta["fd-a"]), share_w2=meta["share-w2"] in ("1", "true"),
                   conv_kernels=meta["conv-kernels"]).double()


def failure(name, why):
    return {"name": name, "abs": math.inf, "rel": math.inf, "ok": False, "why": why}


def load_params(model, theirs, prefix):
    """Copies synth's parameters ({name: tensor}) into the model by name. The parameterisation
    itself is checked: one failure per name only one side has and per shape that differs."""
    params = dict(model.named_parameters())
    results = [failure(prefix + n, "only in " + ("torch" if n in params else "synth"))
               for n in sorted(set(params) ^ set(theirs))]
    for n, p in params.items():
        if n in theirs:
            if tuple(p.shape) != tuple(theirs[n].shape):
                results.append(failure(prefix + n, f"shape torch {list(p.shape)} vs synth {list(theirs[n].shape)}"))
            else:
                with torch.no_grad():
                    p.copy_(theirs[n].double())
    return results


def report(variant, results, tol, verbose, path, note):
    """Prints the mismatches (every result with verbose) and one summary line; True if all ok."""
    bad = [r for r in results if not r["ok"]]
    worst = max(results, key=lambda r: r["rel"])
    for r in results if verbose else bad:
        print(f"  {'ok ' if r['ok'] else 'BAD'} {r['name']:<44} max abs {r['abs']:.3e}  rel {r['rel']:.3e} {r['why']}")
    status = "ok" if not bad else f"MISMATCH in {len(bad)} of"
    print(f"{variant}: {status} {len(results)} tensors (tolerance rel {tol:g}); worst {worst['name']} "
          f"rel {worst['rel']:.2e} abs {worst['abs']:.2e}; {note} [{os.path.basename(path)}]")
    return not bad


def check_parity(path, tol, verbose):
    meta, t = read_tensor_file(path)
    model = model_from(meta)
    params = dict(model.named_parameters())
    results = load_params(model, {n[len("param/"):]: v for n, v in t.items() if n.startswith("param/")}, "param/")

    if all(r["ok"] for r in results):
        x, y = t["x"].long(), t["y"].long()
        logits = model(x)
        loss = F.cross_entropy(logits, y.reshape(-1))
        loss.backward()
        results.append(compare("loss", t["loss"], loss.detach().reshape(1), tol))
        results.append(compare("logits", t["logits"], logits.detach(), tol))
        for n, p in params.items():
            if p.requires_grad:
                results.append(compare(f"grad/{n}", t[f"grad/{n}"], p.grad, tol))
            elif f"grad/{n}" in t:
                results.append(failure(f"grad/{n}", "synth has a gradient for a frozen parameter"))
        trainable = [p for p in params.values() if p.requires_grad]
        clip = t["clip"].double().item()
        norm = torch.nn.utils.clip_grad_norm_(trainable, clip)  # clip = max_norm / (norm + 1e-6), as synth
        results.append(compare("grad_norm", t["grad_norm"], norm.detach().reshape(1), tol))
        before = {n: p.detach().clone() for n, p in params.items()}
        opt = adamw_for(model, float(meta["lr"]), (float(meta["beta1"]), float(meta["beta2"])),
                        float(meta["eps"]), float(meta["weight_decay"]))
        opt.step()
        # The step's update, after - before: stricter than comparing the parameters themselves,
        # whose size would hide a wrong step in the float32 noise of the weights.
        for n, p in params.items():
            synth_step = t[f"after/{n}"].double() - t[f"param/{n}"].double()
            results.append(compare(f"after/{n} (update)", synth_step, p.detach() - before[n], tol))
    return report(meta["variant"], results, tol, verbose, path, f"synth loss {t['loss'].item():.6f}")


# ---- safetensors: the files of build/export and build/parity --safetensors -----------------

SAFETENSORS_MAX_HEADER = 100_000_000  # the reference implementation's limit, as src/train/safetensors.h


def read_safetensors(path):
    """Returns (metadata dict, {name: float32 tensor}) of a safetensors file (format: see
    src/train/safetensors.h), read with json and struct alone (no safetensors package) and as strictly
    as synth: F32 only, tensors back to back from offset 0 to the end of the file, no repeated keys."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, fewer than the 8 of the header length")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > min(SAFETENSORS_MAX_HEADER, len(data) - 8):
        raise ValueError(f"{path}: header length {n} is over the limit or past the end of the {len(data)}-byte file")

    def unique(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{path}: a key appears twice in {keys}")
        return dict(pairs)

    header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=unique)
    meta = header.pop("__metadata__", {})
    block = data[8 + n:]
    tensors, end = {}, 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        shape, (begin, stop) = info["shape"], info["data_offsets"]
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, not F32")
        if begin != end or stop - begin != 4 * math.prod(shape):
            raise ValueError(f"{path}: tensor {name} {shape} at {[begin, stop]} does not follow the previous one at {end}")
        values = bytearray(block[begin:stop])
        tensors[name] = torch.frombuffer(values, dtype=torch.float32).reshape(shape) if values else torch.empty(shape)
        end = stop
    if end != len(block):
        raise ValueError(f"{path}: {len(block) - end} trailing bytes after the last tensor")
    return meta, tensors


def check_safetensors(path, tol, verbose):
    """The model of a build/parity --safetensors file, rebuilt from the file alone (its config
    metadata and its parameters), must give the logits synth computed for the batch of the
    <variant>.bin beside it; the file's parameters must be the dump's, bit for bit."""
    meta, theirs = read_safetensors(path)
    _, t = read_tensor_file(os.path.splitext(path)[0] + ".bin")
    config = dict(line.split("=", 1) for line in meta["config"].splitlines() if line)
    # The vocabulary is tok_emb's rows: a build/lm config's --vocab is only --bench's default.
    config["vocab"] = str(theirs["tok_emb"].shape[0])
    model = model_from(config)
    results = load_params(model, theirs, "")
    if meta.get("format") != "synth":
        results.append(failure("__metadata__", f"format {meta.get('format')!r}, not 'synth'"))
    fixed = set(filter(None, meta.get("fixed", "").split(",")))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    if fixed != frozen:
        results.append(failure("__metadata__", f"fixed {sorted(fixed)}, but the model freezes {sorted(frozen)}"))
    for n, v in theirs.items():
        same = f"param/{n}" in t and torch.equal(v, t[f"param/{n}"])
        results.append({"name": f"{n} (exported)", "abs": 0.0 if same else math.inf, "rel": 0.0 if same else math.inf,
                        "ok": same, "why": "" if same else "differs from the dump's param/"})
    if all(r["ok"] for r in results):
        with torch.no_grad():
            results.append(compare("logits", t["logits"], model(t["x"].long()), tol))
    return report(config["variant"], results, tol, verbose, path, "model from the file's config and parameters")


# ---- bench: throughput, one variant per process ---------------------------------------------

def openblas_kernel():
    """The OpenBLAS kernel torch's BLAS calls bound to (torch links libblas.so.3, which Debian's
    alternatives point at OpenBLAS), or 'unknown' when the library is not OpenBLAS."""
    import ctypes
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "unknown"


def torch_blas_info():
    """The BLAS-related lines of torch.__config__.show(): Debian's torch has BLAS_INFO=generic
    (it calls libblas.so.3, i.e. OpenBLAS), and MKL-DNN, which float32 matmuls do not use."""
    cfg = torch.__config__.show()
    keys = re.findall(r"\b(BLAS_INFO=\w+|USE_MKLDNN=\w+|USE_OPENMP=\w+|CPU capability usage: \w+)", cfg)
    return ", ".join(keys)


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = SynthLM(args.vocab, args.d_model, args.layers, args.heads, args.d_ff, args.seq, args.variant,
                    fr_rank=args.fr_rank, fd_a=args.fd_a, share_w2=args.share_w2, conv_kernels=args.conv_kernels)
    # As build/lm --bench: AdamW defaults of synth's AdamWConfig, lr 1e-4, clip 1.0.
    opt = adamw_for(model, 1e-4, (0.9, 0.98), 1e-9, 0.01, foreach=True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    B, T = args.batch, args.seq
    x = torch.randint(args.vocab, (B, T))
    y = torch.randint(args.vocab, (B * T,))

    # --bf16: the one line a PyTorch user adds for bf16 matmuls; weights and AdamW stay fp32.
    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()

    def infer_step():
        with torch.inference_mode(), autocast():
            model(x)

    def tokens_per_s(step, n):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        return B * T * n / (time.perf_counter() - t0)

    tokens_per_s(train_step, 3)
    train = tokens_per_s(train_step, args.bench_steps)
    tokens_per_s(infer_step, 2)
    infer = tokens_per_s(infer_step, args.bench_infer_steps)
    print(json.dumps({
        "impl": "torch", "variant": args.variant, "precision": "bf16" if args.bf16 else "fp32",
        "params": sum(p.numel() for p in trainable),
        "train_tokens_per_s": round(train, 1), "infer_tokens_per_s": round(infer, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "batch": B, "seq": T, "d_model": args.d_model, "layers": args.layers, "heads": args.heads,
        "d_ff": args.d_ff, "vocab": args.vocab, "threads": torch.get_num_threads(), "kernel": openblas_kernel(),
        "torch": torch.__version__, "blas": torch_blas_info()}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parity", help="check build/parity dumps")
    p.add_argument("files", nargs="+")
    p.add_argument("--tol", type=float, default=1e-4, help="largest relative error allowed")
    p.add_argument("--verbose", "-v", action="store_true", help="one line per tensor, not only mismatches")
    st = sub.add_parser("safetensors", help="check build/parity --safetensors files")
    st.add_argument("files", nargs="+")
    st.add_argument("--tol", type=float, default=1e-5, help="largest relative error of the logits allowed")
    st.add_argument("--verbose", "-v", action="store_true", help="one line per tensor, not only mismatches")
    b = sub.add_parser("bench", help="throughput of one variant, one JSON line")
    b.add_argument("--variant", default="V")
    for name, default in [("vocab", 65), ("d-model", 256), ("layers", 4), ("heads", 4), ("d-ff", 1024),
                          ("seq", 128), ("batch", 32), ("threads", 2), ("bench-steps", 10),
                          ("bench-infer-steps", 20), ("fr-rank", 8), ("fd-a", 0), ("seed", 1337)]:
        b.add_argument(f"--{name}", type=int, default=default)
    b.add_argument("--share-w2", action="store_true")
    b.add_argument("--bf16", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16)")
    b.add_argument("--conv-kernels", default="3,7,15,31,31,31,31")
    args = ap.parse_args()
    if args.cmd == "bench":
        bench(args)
        return 0
    check = check_parity if args.cmd == "parity" else check_safetensors
    ok = True
    for path in args.files:
        ok = check(path, args.tol, args.verbose) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
