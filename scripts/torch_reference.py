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
    import torch.nn.functional as F
except ImportError as e:
    print(f"torch_reference.py: PyTorch is not importable ({e}); install it with "
          "`apt-get install python3-torch` and run this script with /usr/bin/python3", file=sys.stderr)
    sys.exit(EXIT_NO_TORCH)

# The model itself is scripts/load_safetensors.py's (one definition for the parity check and for
# loading an export; docs/checkpoints.md), imported from beside this file.
from load_safetensors import SynthLM  # noqa: E402


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

from load_safetensors import read_safetensors  # noqa: E402


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
