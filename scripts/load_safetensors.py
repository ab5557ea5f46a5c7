#!/usr/bin/python3
"""load_safetensors.py: a synth language model in plain PyTorch, rebuilt from its safetensors file alone.

    /usr/bin/python3 scripts/load_safetensors.py MODEL.safetensors                  # what the file holds
    /usr/bin/python3 scripts/load_safetensors.py MODEL.safetensors --text="ROMEO:"  # next-token logits
    /usr/bin/python3 scripts/load_safetensors.py MODEL.safetensors --ids=1,2,3 --logits-out=logits.f32

MODEL.safetensors is what `build/export --checkpoint=RUN_DIR/final.ckpt --out=MODEL.safetensors`
writes (docs/checkpoints.md describes the file). Nothing of synth's source is needed: this file is
self-contained (copy it anywhere with the model) and reads the file with json and struct alone.
The model is built from the file's `config` metadata (d-model, layers, heads, d-ff, seq, variant
and the variants' settings), every parameter loaded by name with its shape checked, and the
tokenizer decoded from the `tokenizer` metadata ("synth-char-vocab 1" or "synth-word-vocab 1").

--text (tokenized with the file's tokenizer) or --ids (comma-separated ids) give one sequence of
at most seq tokens; the script prints the most likely next tokens, and --logits-out writes the
logits of every position as float32, (T, vocab), little-endian, row-major. The forward runs in
float64 (--float32 for float32); tests/test_docs.cpp checks it against synth's logits to 1e-5.

Needs PyTorch: Debian's python3-torch is installed for /usr/bin/python3 (a `python3` earlier on
PATH, such as pyenv's, may not have it). Exits 77 with a message when torch is not importable.
"""
import argparse
import json
import math
import struct
import sys

EXIT_NO_TORCH = 77
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"load_safetensors.py: PyTorch is not importable by {sys.executable} ({e}); install it with "
          "`apt-get install python3-torch` and run this script with /usr/bin/python3", file=sys.stderr)
    sys.exit(EXIT_NO_TORCH)

COMPONENTS = ("V", "D", "R", "Rfix", "FR", "FD")
CONVS = ("LightConv", "DynamicConv")  # sequence mixers of their own: never mixed


# ---- the model (docs/variants.md; scripts/torch_reference.py imports it for the parity check) --
# LayerNorm: eps 1e-5, affine g (ones) and b (zeros). FFN: ReLU(x W1 + b1) W2 + b2. Attention:
# heads are contiguous column blocks of d (head h = columns [h D, (h + 1) D), D = d / H), V's
# 1/sqrt(D) scales Q, one causal softmax over the (mixed) logits, then x W_v, heads merged, W_o.
# Pre-LN blocks; logits = LN_f(x) tok_emb^T (the output layer is the tied embedding).

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


# ---- the file -------------------------------------------------------------------------------

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




# ---- tokenizers: the `tokenizer` metadata ---------------------------------------------------

def tokenizer_from(text):
    """(encode, decode) of a serialized synth tokenizer:
    "synth-char-vocab 1\n<n>\n<cp_0> <cp_1> ...\n": id i is the Unicode code point cp_i;
    "synth-word-vocab 1\n<n>\n<word_0>\n<word_1>\n...": id i is word_i, "<eos>" ends a line."""
    lines = text.split("\n")
    if lines[0] == "synth-char-vocab 1":
        cps = [int(c) for c in lines[2].split()]
        if len(cps) != int(lines[1]):
            raise ValueError("tokenizer: the count does not match the code points")
        index = {chr(c): i for i, c in enumerate(cps)}
        return (lambda s: [index[ch] for ch in s]), (lambda ids: "".join(chr(cps[i]) for i in ids))
    if lines[0] == "synth-word-vocab 1":
        words = lines[2:2 + int(lines[1])]
        index = {w: i for i, w in enumerate(words)}
        unk = index.get("<unk>")

        def encode(s):
            out = []
            for line in s.split("\n"):
                out += [index.get(w, unk) for w in line.split()]
            return out
        return encode, (lambda ids: " ".join("\n" if words[i] == "<eos>" else words[i] for i in ids))
    raise ValueError(f"tokenizer: unknown format {lines[0]!r} (this script reads the LM's char and word vocabularies)")


def model_from_file(path, dtype=torch.float64):
    """(model, config dict, metadata) of a build/export file: the LM of its config, its parameters loaded."""
    meta, tensors = read_safetensors(path)
    if meta.get("format") != "synth":
        raise ValueError(f"{path}: format {meta.get('format')!r}, not 'synth'")
    config = dict(line.split("=", 1) for line in meta["config"].splitlines() if line)
    vocab = tensors["tok_emb"].shape[0]  # the vocabulary is tok_emb's rows
    model = SynthLM(vocab, int(config["d-model"]), int(config["layers"]), int(config["heads"]), int(config["d-ff"]),
                    int(config["seq"]), config["variant"], fr_rank=int(config.get("fr-rank", 8)),
                    fd_a=int(config.get("fd-a", 0)), share_w2=config.get("share-w2", "false") in ("1", "true"),
                    conv_kernels=config.get("conv-kernels", "3,7,15,31,31,31,31"))
    ours = dict(model.named_parameters())
    if set(ours) != set(tensors):
        raise ValueError(f"{path}: parameters {sorted(set(tensors) ^ set(ours))} are in one of the file and the "
                         f"model of its config ({config['variant']}) only")
    with torch.no_grad():
        for name, p in ours.items():
            if tuple(p.shape) != tuple(tensors[name].shape):
                raise ValueError(f"{path}: {name} has shape {list(tensors[name].shape)}, the model {list(p.shape)}")
            p.copy_(tensors[name])
    for name in filter(None, meta.get("fixed", "").split(",")):
        ours[name].requires_grad_(False)
    return model.to(dtype).eval(), config, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--text", help="a prompt, tokenized with the file's tokenizer")
    ap.add_argument("--ids", help="comma-separated token ids")
    ap.add_argument("--logits-out", help="write the logits (T, vocab) as float32 to this file")
    ap.add_argument("--float32", action="store_true", help="run the forward in float32, not float64")
    args = ap.parse_args()
    model, config, meta = model_from_file(args.file, torch.float32 if args.float32 else torch.float64)
    encode, decode = tokenizer_from(meta.get("tokenizer", ""))
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.file}: variant {config['variant']}, {config['layers']} layers, d-model {config['d-model']}, "
          f"{config['heads']} heads, seq {config['seq']}, vocab {model.tok_emb.shape[0]}, {n} parameters, "
          f"step {meta.get('step', '?')}")
    if args.text is None and args.ids is None:
        return
    ids = encode(args.text) if args.text is not None else [int(i) for i in args.ids.split(",")]
    with torch.no_grad():
        logits = model(torch.tensor([ids], dtype=torch.long))  # (T, vocab)
    if args.logits_out:
        with open(args.logits_out, "wb") as f:
            f.write(logits.to(torch.float32).contiguous().numpy().tobytes())
    top = torch.softmax(logits[-1].double(), dim=-1).topk(min(5, logits.shape[1]))
    print("next token: " + ", ".join(f"{decode([i])!r} {p:.3f}" for p, i in zip(top.values.tolist(), top.indices.tolist())))


if __name__ == "__main__":
    main()
