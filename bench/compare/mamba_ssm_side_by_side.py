#!/usr/bin/env python3
"""Side-by-side timings of the public mamba-ssm / causal-conv1d CUDA kernels (and of the
HuggingFace pure-PyTorch Mamba path), on the same shapes and input statistics as our C++
benchmarks (bench/bench_ops.cpp, bench/bench_model.cpp).

This file is ours. It imports mamba_ssm / causal_conv1d only if they are importable (installed or
on PYTHONPATH); the repository ships neither their code nor a recipe to build them.

Output: one JSON object per measurement on stdout (and appended to --out if given); a short
human-readable table on stderr at the end.

  python3 bench/compare/mamba_ssm_side_by_side.py --check --cases ops,inner,model,hf --out r.jsonl

Cases:
  ops    selective_scan_fn fwd / fwd+bwd and causal_conv1d_fn fwd / fwd+bwd, 3 shapes   (mamba_ssm)
  inner  mamba_inner_fn fwd+bwd of one Mamba-130M mixer at 8x2048                        (mamba_ssm)
  model  MambaLMHeadModel 130M / 370M training step (fwd+bwd of LM loss, bf16 autocast)   (mamba_ssm)
  pretrain  the end-to-end pre-training loop (fused AdamW, foreach clipping, pinned batches)  (mamba_ssm)
  prefill   model(input_ids) at B = 1, L = 1024 / 4096, inference_mode, bf16 weights, all and
            last-position logits (num_last_tokens=1)                                     (mamba_ssm)
  decode    generate(cg=True, top_k=1), per-token latency at batch 1 and 64              (mamba_ssm)
  hf     transformers MambaForCausalLM, forced slow (sequential pure-torch) path,
         130M training step at 1x2048, run in a child process where mamba_ssm /
         causal_conv1d / kernels cannot be imported                                     (hf_torch)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import types

import torch
import torch.nn.functional as F

OPS_SHAPES = [(8, 2048, 1536), (16, 1024, 2048), (1, 4096, 1536)]  # (B, L, E)
N_STATE = 16
D_CONV = 4
MODELS = {"130m": dict(d_model=768, n_layer=24), "370m": dict(d_model=1024, n_layer=48)}
VOCAB = 50277  # mamba pads to a multiple of 8 (50280)
KERNEL_MODULES = ("mamba_ssm", "causal_conv1d", "selective_scan_cuda", "causal_conv1d_cuda", "kernels")


# --------------------------------------------------------------------------------------------
# imports
# --------------------------------------------------------------------------------------------
def _shim_transformers_names() -> list[str]:
    """mamba_ssm.utils.{generation,hf} import a few transformers names at module import time.
    If this transformers version lacks one, give it a placeholder (only used by generation /
    from_pretrained, never by the benchmark). Returns the names that were shimmed."""
    shimmed = []
    wanted = {"transformers.generation": ("GenerateDecoderOnlyOutput", "TextStreamer"),
              "transformers.utils": ("WEIGHTS_NAME", "CONFIG_NAME"),
              "transformers.utils.hub": ("cached_file",)}
    for modname, names in wanted.items():
        try:
            mod = __import__(modname, fromlist=["_"])
        except Exception:  # whole module missing: provide an empty one
            mod = types.ModuleType(modname)
            sys.modules[modname] = mod
        for n in names:
            try:
                getattr(mod, n)
            except Exception:
                if n.endswith("_NAME"):
                    setattr(mod, n, {"WEIGHTS_NAME": "pytorch_model.bin", "CONFIG_NAME": "config.json"}[n])
                elif n == "cached_file":
                    setattr(mod, n, lambda *a, **k: (_ for _ in ()).throw(RuntimeError("offline shim")))
                else:
                    setattr(mod, n, type(n, (), {}))
                shimmed.append(f"{modname}.{n}")
    return shimmed


def import_mamba(need_model: bool = False) -> dict:
    """Imports the mamba_ssm / causal_conv1d entry points; returns them in a dict with 'shims'."""
    shims = []
    try:
        import einops  # noqa: F401
    except ImportError:
        raise SystemExit("einops is not importable (mamba_ssm needs it); put it on PYTHONPATH")
    from mamba_ssm.ops.selective_scan_interface import mamba_inner_fn, selective_scan_fn
    from causal_conv1d import causal_conv1d_fn
    out = dict(selective_scan_fn=selective_scan_fn, mamba_inner_fn=mamba_inner_fn,
               causal_conv1d_fn=causal_conv1d_fn, shims=shims)
    if need_model:
        try:
            from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
        except ImportError:
            shims += _shim_transformers_names()
            for m in [m for m in sys.modules if m.startswith("mamba_ssm.models") or m.startswith("mamba_ssm.utils")]:
                del sys.modules[m]
            from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
        from mamba_ssm.models.config_mamba import MambaConfig
        out.update(MambaLMHeadModel=MambaLMHeadModel, MambaConfig=MambaConfig)
    return out


# --------------------------------------------------------------------------------------------
# timing / output
# --------------------------------------------------------------------------------------------
def env_info() -> dict:
    return {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda_runtime": torch.version.cuda}


class Sink:
    def __init__(self, out_path: str | None):
        self.rows: list[dict] = []
        self.fh = open(out_path, "a") if out_path else None

    def emit(self, row: dict) -> None:
        self.rows.append(row)
        line = json.dumps(row)
        print(line, flush=True)
        if self.fh:
            self.fh.write(line + "\n")
            self.fh.flush()


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def time_cuda(fn, n_sets: int, reps: int, warmup: int) -> dict:
    """fn(i) runs one iteration on input set i % n_sets. One CUDA event pair per rep."""
    for i in range(warmup):
        fn(i % n_sets)
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        starts[i].record()
        fn(i % n_sets)
        ends[i].record()
    torch.cuda.synchronize()
    us = [s.elapsed_time(e) * 1e3 for s, e in zip(starts, ends)]
    return {"reps": reps, "median_us": _pct(us, 0.5), "p10_us": _pct(us, 0.1), "p90_us": _pct(us, 0.9)}


# --------------------------------------------------------------------------------------------
# inputs (value statistics of bench_ops.cpp make_set; layout of mamba's Mamba block)
# --------------------------------------------------------------------------------------------
def dt_rank(E: int) -> int:
    return (E // 2 + 15) // 16  # ceil(d_model / 16) with d_model = E / 2


def make_set(B: int, L: int, E: int, N: int, layout: str, seed: int, grad: bool) -> dict:
    """layout:
      mamba_block  as Mamba.forward / MambaInnerFn produce them: xz = in_proj GEMM output (2E, B*L)
                   viewed as (B, 2E, L) (z and the conv input are halves of it, time stride 1);
                   delta likewise from a (E, B*L) GEMM; u = conv output, contiguous (B, E, L);
                   B, C contiguous (B, N, L).
      contiguous   every tensor contiguous (B, E, L) / (B, N, L).
      ours_model   bench_ops.cpp's model layout: time-major (B, L, E) tensors transposed (time
                   stride E); mamba_ssm copies them to contiguous inside selective_scan_fn.
    """
    torch.manual_seed(seed)
    dev = "cuda"
    bf = dict(device=dev, dtype=torch.bfloat16)
    f32 = dict(device=dev, dtype=torch.float32)
    R = dt_rank(E)
    s: dict = {}
    leaves = []
    if layout == "mamba_block":
        xz_base = torch.randn(2 * E, B * L, **bf)
        d_base = torch.randn(E, B * L, **bf) * 0.5
        u = torch.randn(B, E, L, **bf)
        Bm = torch.randn(B, N, L, **bf)
        Cm = torch.randn(B, N, L, **bf)
        dout = torch.randn(B, E, L, **bf)
        leaves = [xz_base, d_base, u, Bm, Cm]
        for t in leaves:
            t.requires_grad_(grad)
        xz = xz_base.view(2 * E, B, L).permute(1, 0, 2)  # (B, 2E, L), strides (L, B*L, 1)
        s.update(u=u, delta=d_base.view(E, B, L).permute(1, 0, 2), z=xz[:, E:], B=Bm, C=Cm,
                 conv_x=xz[:, :E], dout=dout)
    elif layout == "contiguous":
        u, delta, z, cx = (torch.randn(B, E, L, **bf) for _ in range(4))
        delta = delta * 0.5
        Bm, Cm = torch.randn(B, N, L, **bf), torch.randn(B, N, L, **bf)
        leaves = [u, delta, z, Bm, Cm, cx]
        for t in leaves:
            t.requires_grad_(grad)
        s.update(u=u, delta=delta, z=z, B=Bm, C=Cm, conv_x=cx, dout=torch.randn(B, E, L, **bf))
    elif layout == "ours_model":
        xz = torch.randn(B, L, 2 * E, **bf)
        x_dbl = torch.randn(B, L, R + 2 * N, **bf)
        u = torch.randn(B, L, E, **bf)
        d = torch.randn(B, L, E, **bf) * 0.5
        leaves = [xz, x_dbl, u, d]
        for t in leaves:
            t.requires_grad_(grad)
        s.update(u=u.transpose(1, 2), delta=d.transpose(1, 2), z=xz[:, :, E:].transpose(1, 2),
                 B=x_dbl[:, :, R:R + N].transpose(1, 2), C=x_dbl[:, :, R + N:].transpose(1, 2),
                 conv_x=xz[:, :, :E].transpose(1, 2), dout=torch.randn(B, L, E, **bf).transpose(1, 2))
    else:
        raise ValueError(layout)
    A = (-torch.arange(1, N + 1, **f32)).repeat(E, 1)
    D = torch.ones(E, **f32)
    dt = torch.exp(torch.rand(E, **f32) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    delta_bias = dt + torch.log(-torch.expm1(-dt))  # inverse softplus
    conv_w = torch.randn(E, D_CONV, **f32) * 0.5
    conv_b = torch.randn(E, **f32)
    for t in (A, D, delta_bias, conv_w, conv_b):
        t.requires_grad_(grad)
    s.update(A=A, D=D, delta_bias=delta_bias, conv_w=conv_w, conv_b=conv_b, leaves=leaves)
    return s


def set_bytes(B, L, E, N) -> int:
    return (6 * B * L * E + 2 * B * L * (dt_rank(E) + 2 * N)) * 2


def n_sets_for(B, L, E, N, min_sets: int) -> int:
    # at least min_sets, and enough that the rotation touches >= 4x the 50 MB L2
    return max(min_sets, math.ceil(200e6 / max(1, set_bytes(B, L, E, N))))


# --------------------------------------------------------------------------------------------
# float64 pure-torch reference of the selective scan (ours), used by --check
# --------------------------------------------------------------------------------------------
def scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True):
    """y[b,e,t] = (sum_n C[b,n,t] h[b,e,n,t] + D[e] u[b,e,t]) * silu(z[b,e,t]),
    h[t] = exp(dt[t] A) * h[t-1] + dt[t] B[t] u[t], dt = softplus(delta + delta_bias).
    Shapes: u, delta, z (b, e, l); A (e, n); B, C (b, n, l); D, delta_bias (e). Computed in float64."""
    u, delta, A, B, C, D, z, delta_bias = (t.double() for t in (u, delta, A, B, C, D, z, delta_bias))
    dt = delta + delta_bias[None, :, None]
    if delta_softplus:
        dt = F.softplus(dt)
    b, e, l = u.shape
    h = u.new_zeros(b, e, A.shape[1])
    ys = []
    for t in range(l):
        dA = torch.exp(dt[:, :, t, None] * A[None])                       # (b, e, n)
        h = dA * h + (dt[:, :, t] * u[:, :, t])[:, :, None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) + D[None, :, None] * u
    return y * F.silu(z)


def conv_reference(x, w, b):
    """causal depthwise conv, kernel K, then SiLU, in float64. x (B, E, L), w (E, K), b (E)."""
    K = w.shape[1]
    y = F.conv1d(F.pad(x.double(), (K - 1, 0)), w.double()[:, None, :], b.double(), groups=x.shape[1])
    return F.silu(y)


def _relerr(a, b) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def run_check(mods: dict, sink: Sink, info: dict) -> bool:
    ss, cc = mods["selective_scan_fn"], mods["causal_conv1d_fn"]
    ok_all = True
    # odd sizes; the second spans more than one 2048-step chunk of the kernel
    for (Bn, E, L), dtype in [((2, 5, 37), torch.float32), ((2, 5, 37), torch.bfloat16),
                             ((1, 3, 2099), torch.float32), ((1, 3, 2099), torch.bfloat16)]:
        torch.manual_seed(1234 + L)
        s = make_set(Bn, L, E, N_STATE, "contiguous", seed=1234 + L, grad=False)
        ins = {k: s[k].detach().to(dtype if k in ("u", "delta", "z", "B", "C") else torch.float32).clone()
               for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")}
        ins["A"] = ins["A"] * torch.rand_like(ins["A"]).add(0.5)  # not just -arange
        for t in ins.values():
            t.requires_grad_(True)
        out = ss(ins["u"], ins["delta"], ins["A"], ins["B"], ins["C"], ins["D"], ins["z"], ins["delta_bias"],
                 delta_softplus=True)
        ref_in = {k: v.detach().double().requires_grad_(True) for k, v in ins.items()}
        ref = scan_reference(**ref_in)
        g = torch.randn_like(ref)
        grads = torch.autograd.grad(out, list(ins.values()), g.to(out.dtype))
        rgrads = torch.autograd.grad(ref, list(ref_in.values()), g)
        tol_f, tol_b = (2e-3, 1e-2) if dtype == torch.float32 else (3e-2, 8e-2)
        errs = {"out": _relerr(out, ref)}
        errs.update({f"d{k}": _relerr(a, r) for k, a, r in zip(ins.keys(), grads, rgrads)})
        ok = errs["out"] < tol_f and all(v < tol_b for k, v in errs.items() if k != "out")
        ok_all &= ok
        sink.emit({"bench": "check_selective_scan", "impl": "mamba_ssm", **info, "B": Bn, "L": L, "E": E,
                   "N": N_STATE, "dtype": str(dtype).replace("torch.", ""), "rel_err_max_norm": errs,
                   "tol_fwd": tol_f, "tol_bwd": tol_b, "ok": ok})
        # causal conv
        x = torch.randn(Bn, E, L, device="cuda", dtype=dtype)
        w = torch.randn(E, D_CONV, device="cuda") * 0.5
        b = torch.randn(E, device="cuda")
        y = cc(x, w.to(dtype), b.to(dtype), activation="silu")
        e_conv = _relerr(y, conv_reference(x, w.to(dtype), b.to(dtype)))
        okc = e_conv < tol_f
        ok_all &= okc
        sink.emit({"bench": "check_causal_conv1d", "impl": "causal_conv1d", **info, "B": Bn, "L": L, "E": E,
                   "dtype": str(dtype).replace("torch.", ""), "rel_err_max_norm": e_conv, "tol": tol_f, "ok": okc})
    return ok_all


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------
def _row(bench, impl, info, B, L, E, N, mode, st, **extra):
    return {"bench": bench, "impl": impl, **info, "B": B, "L": L, "E": E, "N": N, "dtype": "bf16",
            "state": "fp32", "mode": mode, **st, **extra}


def case_ops(mods, sink, info, args):
    ss, cc = mods["selective_scan_fn"], mods["causal_conv1d_fn"]
    for (B, L, E) in OPS_SHAPES:
        nset = n_sets_for(B, L, E, N_STATE, args.sets)
        sets = [make_set(B, L, E, N_STATE, args.layout, seed=100 + i, grad=True) for i in range(nset)]
        extra = dict(layout=args.layout, n_input_sets=nset, bytes_min=set_bytes(B, L, E, N_STATE))

        def scan_fwd(i):
            s = sets[i]
            with torch.no_grad():
                ss(s["u"], s["delta"], s["A"], s["B"], s["C"], s["D"], s["z"], s["delta_bias"], delta_softplus=True)

        def scan_fwdbwd(i):
            s = sets[i]
            out = ss(s["u"], s["delta"], s["A"], s["B"], s["C"], s["D"], s["z"], s["delta_bias"], delta_softplus=True)
            torch.autograd.grad(out, [s[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")], s["dout"])

        def conv_fwd(i):
            s = sets[i]
            with torch.no_grad():
                cc(s["conv_x"], s["conv_w"], s["conv_b"], activation="silu")

        def conv_fwdbwd(i):
            s = sets[i]
            y = cc(s["conv_x"], s["conv_w"], s["conv_b"], activation="silu")
            torch.autograd.grad(y, [s["conv_x"], s["conv_w"], s["conv_b"]], s["dout"])

        for bench, fn, mode in (("selective_scan", scan_fwd, "fwd"), ("selective_scan", scan_fwdbwd, "fwd+bwd"),
                                ("causal_conv1d", conv_fwd, "fwd"), ("causal_conv1d", conv_fwdbwd, "fwd+bwd")):
            st = time_cuda(fn, nset, args.reps, args.warmup)
            sink.emit(_row(bench, "mamba_ssm", info, B, L, E, N_STATE, mode, st, **extra))
        del sets
        torch.cuda.empty_cache()


def case_inner(mods, sink, info, args):
    inner = mods["mamba_inner_fn"]
    B, L, Dm, E, N, R, K = 8, 2048, 768, 1536, N_STATE, 48, D_CONV
    nset = max(args.sets, 3)
    sets = []
    for i in range(nset):
        torch.manual_seed(300 + i)
        f32 = dict(device="cuda", dtype=torch.float32)
        xz_base = torch.randn(2 * E, B * L, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        dt = torch.exp(torch.rand(E, **f32) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        p = dict(
            conv_w=(torch.randn(E, 1, K, **f32) * 0.5), conv_b=torch.randn(E, **f32),
            x_proj_w=torch.randn(R + 2 * N, E, **f32) / math.sqrt(E), dt_proj_w=torch.randn(E, R, **f32) / math.sqrt(R),
            out_proj_w=torch.randn(Dm, E, **f32) / math.sqrt(E),
            A=(-torch.arange(1, N + 1, **f32)).repeat(E, 1), D=torch.ones(E, **f32),
            delta_bias=dt + torch.log(-torch.expm1(-dt)))
        for t in p.values():
            t.requires_grad_(True)
        sets.append(dict(xz_base=xz_base, xz=xz_base.view(2 * E, B, L).permute(1, 0, 2), p=p,
                         dout=torch.randn(B, L, Dm, device="cuda", dtype=torch.bfloat16)))

    def fwdbwd(i):
        s, p = sets[i], sets[i]["p"]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = inner(s["xz"], p["conv_w"], p["conv_b"], p["x_proj_w"], p["dt_proj_w"], p["out_proj_w"], None,
                        p["A"], None, None, p["D"], delta_bias=p["delta_bias"], delta_softplus=True)
        torch.autograd.grad(out, [s["xz"], *p.values()], s["dout"])

    st = time_cuda(fwdbwd, nset, args.reps, args.warmup)
    sink.emit(_row("mamba_inner", "mamba_ssm", info, B, L, E, N, "fwd+bwd", st, d_model=Dm, dt_rank=R,
                   d_conv=K, layout="mamba_block", precision="bf16-autocast", n_input_sets=nset))
    del sets
    torch.cuda.empty_cache()


class _TorchRMSNorm(torch.nn.RMSNorm):
    """Fallback for mamba's Triton RMSNorm module (same constructor: (dim, eps=..., device, dtype))."""

    def __init__(self, hidden_size, eps=1e-5, device=None, dtype=None):
        super().__init__(hidden_size, eps=eps, device=device, dtype=dtype)


def _lm_step(model, ids, fed: str):
    """Training step without optimizer: forward + backward of the next-token cross-entropy.
    fed='L+1' mirrors bench_model.cpp (backbone runs on all B x (seq+1) ids, last position dropped);
    fed='L' runs the backbone on exactly seq tokens."""
    x = ids if fed == "L+1" else ids[:, :-1]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x)
        logits = out.logits if hasattr(out, "logits") else out[0]
        logits = logits[:, : ids.shape[1] - 1]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
    loss.backward()
    model.zero_grad(set_to_none=True)
    return loss


def _time_model(model, ids_sets, fed, reps, warmup):
    for i in range(warmup):
        _lm_step(model, ids_sets[i % len(ids_sets)], fed)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    st = time_cuda(lambda i: _lm_step(model, ids_sets[i], fed), len(ids_sets), reps, 0)
    st["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
    return st


def case_model(mods, sink, info, args):
    import mamba_ssm.models.mixer_seq_simple as mss
    Model, Config = mods["MambaLMHeadModel"], mods["MambaConfig"]
    B, L = args.model_batch, args.model_seq
    for name in args.models.split(","):
        dims = MODELS[name]
        variants = [("fused_add_norm", dict(fused_add_norm=True), False),
                    ("unfused_triton_rmsnorm", dict(fused_add_norm=False), False),
                    ("unfused_torch_rmsnorm", dict(fused_add_norm=False), True)]
        for label, cfg_extra, torch_norm in variants:
            saved = mss.RMSNorm
            model = None
            try:
                if torch_norm:
                    mss.RMSNorm = _TorchRMSNorm
                torch.manual_seed(0)
                cfg = Config(d_model=dims["d_model"], n_layer=dims["n_layer"], vocab_size=VOCAB, ssm_cfg={},
                             rms_norm=True, residual_in_fp32=True, pad_vocab_size_multiple=8, **cfg_extra)
                model = Model(cfg, device="cuda", dtype=torch.float32).train()
                ids_sets = [torch.randint(0, VOCAB, (B, L + 1), device="cuda") for _ in range(3)]
                n_params = sum(p.numel() for p in model.parameters())
                for fed in args.model_fed.split(","):
                    st = _time_model(model, ids_sets, fed, args.model_reps, args.model_warmup)
                    tokens = B * (L + 1 if fed == "L+1" else L)
                    sink.emit(_row("train_step", "mamba_ssm", info, B, L, dims["d_model"] * 2, N_STATE,
                                   f"train_step;{label};fed={fed}", st, model=f"mamba-{name}", n_layer=dims["n_layer"],
                                   d_model=dims["d_model"], parameters=n_params, vocab_padded=model.lm_head.weight.shape[0],
                                   norm_path=label, tokens_fed=tokens, precision="bf16-autocast;fp32-weights",
                                   loss="full-logits fp32 cross-entropy",
                                   tokens_per_s=B * L / (st["median_us"] * 1e-6)))
                del model
                torch.cuda.empty_cache()
                break
            except Exception as e:  # noqa: BLE001
                print(f"[model {name}] variant {label} failed: {type(e).__name__}: {e}; trying next", file=sys.stderr)
                model = None
                torch.cuda.empty_cache()
                sink.emit({"bench": "train_step", "impl": "mamba_ssm", **info, "model": f"mamba-{name}",
                           "mode": f"train_step;{label}", "error": f"{type(e).__name__}: {str(e)[:500]}"})
            finally:
                mss.RMSNorm = saved


def _inference_model(mods, name):
    """MambaLMHeadModel at `name`'s shapes, random weights, bf16, eval: how its users serve it."""
    Model, Config = mods["MambaLMHeadModel"], mods["MambaConfig"]
    dims = MODELS[name]
    torch.manual_seed(0)
    cfg = Config(d_model=dims["d_model"], n_layer=dims["n_layer"], vocab_size=VOCAB, ssm_cfg={}, rms_norm=True,
                 residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=8)
    return Model(cfg, device="cuda", dtype=torch.bfloat16).eval()


def _event_ms(fn) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def case_prefill(mods, sink, info, args):
    """Prefill as mamba-ssm's users call it: model(input_ids) under torch.inference_mode(), bf16
    weights, B = 1; CUDA events, median of --infer-reps after --warmup. Twice: as the issue defines it
    (logits "all": the LM head at every position) and with num_last_tokens=1 (logits "last": the head
    at the last position only, which is what its generate() runs for a prompt and what our prefill
    computes), so that a ratio can be read like for like."""
    for name in args.models.split(","):
        model = _inference_model(mods, name)
        for L in [int(x) for x in args.prefill_lengths.split(",") if x]:
            ids = torch.randint(0, VOCAB, (1, L), device="cuda")
            for logits, last in (("all", 0), ("last", 1)):
                with torch.inference_mode():
                    for _ in range(args.warmup):
                        model(ids, num_last_tokens=last)
                    ms = sorted(_event_ms(lambda: model(ids, num_last_tokens=last)) for _ in range(args.infer_reps))
                med = ms[len(ms) // 2]
                call = "model(input_ids" + (", num_last_tokens=1" if last else "") + "), inference_mode, bf16 weights"
                sink.emit({"bench": "prefill", "impl": "mamba_ssm", **info, "model": f"mamba-{name}", "batch": 1,
                           "seq": L, "logits": logits, "median_ms": med, "p10_ms": _pct(ms, 0.1),
                           "p90_ms": _pct(ms, 0.9), "reps": len(ms), "tokens_per_s": L / (med * 1e-3), "call": call})
        del model
        torch.cuda.empty_cache()


def case_decode(mods, sink, info, args):
    """Decode as mamba-ssm's users call it: generate(input_ids, max_length, cg=True, top_k=1) from a
    16-token prompt; per-token latency = (time for 264 new tokens - time for 8) / 256, each the
    median of --decode-reps after warm-up calls that capture the CUDA graph; batch 1 and 64.
    With --decode-sampling KEY=VALUE,... (temperature, top_k, top_p, min_p, repetition_penalty: the
    keyword arguments of its generate) sampled instead, as `profile --decode-sampling` times ours."""
    sampling = {"top_k": 1}
    for item in filter(None, args.decode_sampling.split(",")):
        key, _, value = item.partition("=")
        # Its min_p differs from ours (only with top_k=0, compared on raw logits, batch 1); greedy is top_k=1;
        # the draw is seeded by torch.manual_seed, not a keyword.
        if key not in ("temperature", "top_k", "top_p", "repetition_penalty") or not value:
            raise SystemExit(f"--decode-sampling: '{item}' is not temperature/top_k/top_p/repetition_penalty=VALUE")
        sampling[key] = int(value) if key == "top_k" else float(value)
    if args.decode_sampling and "top_k" not in args.decode_sampling:
        sampling["top_k"] = 0  # its generate's default, 1, is greedy; 0 samples from the whole vocabulary
    call = "generate(cg=True, " + ", ".join(f"{k}={v}" for k, v in sampling.items()) + "), bf16 weights"
    for name in args.models.split(","):
        model = _inference_model(mods, name)
        for B in [int(x) for x in args.decode_batches.split(",") if x]:
            prompt = torch.randint(0, VOCAB, (B, 16), device="cuda")

            def gen(new):
                return model.generate(input_ids=prompt, max_length=16 + new, cg=True, **sampling)

            for _ in range(2):
                gen(264)  # the graph is captured for the longest length first
            long = sorted(_event_ms(lambda: gen(264)) for _ in range(args.decode_reps))
            short = sorted(_event_ms(lambda: gen(8)) for _ in range(args.decode_reps))
            per_token = (long[len(long) // 2] - short[len(short) // 2]) / 256
            sink.emit({"bench": "decode", "impl": "mamba_ssm", **info, "model": f"mamba-{name}", "batch": B,
                       "prompt": 16, "per_token_ms": per_token, "tokens_per_s": B / (per_token * 1e-3),
                       "median_ms_264_new": long[len(long) // 2], "median_ms_8_new": short[len(short) // 2],
                       "reps": args.decode_reps, "sampling": args.decode_sampling or None, "call": call})
        del model
        torch.cuda.empty_cache()


def case_pretrain(mods, sink, info, args):
    """End-to-end pre-training step as a mamba-ssm user writes it (issue 15's reference loop):
    MambaLMHeadModel in fp32 weights, bf16 autocast, torch.optim.AdamW(fused=True) with weight decay
    on matrices only, clip_grad_norm_(1.0, foreach=True), batches sampled on the host into pinned
    memory and copied non-blocking, the loss read every `--pretrain-log` steps. Steps/s over steps
    [warmup, warmup + steps), wall clock around whole steps with a final synchronize (what a user
    sees), peak memory from the allocator. Compare with `mamba-codesign pretrain`'s own tokens/s
    on the same shapes (scripts/pretrain_before_after.sh prints it)."""
    Model, Config = mods["MambaLMHeadModel"], mods["MambaConfig"]
    B, L = args.model_batch, args.model_seq
    for name in args.models.split(","):
        dims = MODELS[name]
        torch.manual_seed(0)
        cfg = Config(d_model=dims["d_model"], n_layer=dims["n_layer"], vocab_size=VOCAB, ssm_cfg={},
                     rms_norm=True, residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=8)
        model = Model(cfg, device="cuda", dtype=torch.float32).train()
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=1e-3, betas=(0.9, 0.95), eps=1e-8, fused=True)
        corpus = torch.randint(0, VOCAB, (1 << 24,), dtype=torch.int64)  # a token stream on the host
        gen = torch.Generator().manual_seed(1)

        def batch():
            starts = torch.randint(0, corpus.numel() - L - 1, (B,), generator=gen)
            host = torch.stack([corpus[s:s + L + 1] for s in starts.tolist()]).pin_memory()
            return host.to("cuda", non_blocking=True)

        def step(i):
            ids = batch()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(ids[:, :-1]).logits
                loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if (i + 1) % args.pretrain_log == 0:
                loss.item()  # a logging step reads the loss
            return loss

        for i in range(args.pretrain_warmup):
            step(i)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for i in range(args.pretrain_steps):
            step(args.pretrain_warmup + i)
        torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        ms = 1e3 * secs / args.pretrain_steps
        sink.emit({"bench": "pretrain_e2e", "impl": "mamba_ssm", **info, "model": f"mamba-{name}", "batch": B,
                   "seq": L, "steps": args.pretrain_steps, "ms_per_step": ms, "tokens_per_s": B * L / (ms * 1e-3),
                   "peak_mem_bytes": torch.cuda.max_memory_allocated(),
                   "loop": "bf16 autocast, fused AdamW, foreach clip, pinned non-blocking batches"})
        del model, opt
        torch.cuda.empty_cache()


def hf_child(args) -> None:
    """Runs in a separate process: mamba_ssm / causal_conv1d / kernels are made unimportable
    BEFORE transformers is imported, and the fast-path globals are cleared after model
    construction, so MambaMixer.forward takes slow_forward (sequential scan, use_mambapy=False)."""
    for m in KERNEL_MODULES:
        sys.modules[m] = None  # import raises ImportError; importlib.util.find_spec returns None
    import transformers
    from transformers import MambaConfig, MambaForCausalLM
    import transformers.models.mamba.modeling_mamba as mm
    info = env_info()
    sink = Sink(args.out)
    B, L = args.hf_batch, args.hf_seq
    torch.manual_seed(0)
    cfg = MambaConfig(vocab_size=50280, hidden_size=768, state_size=N_STATE, num_hidden_layers=24, expand=2,
                      conv_kernel=D_CONV, use_bias=False, use_conv_bias=True, time_step_rank="auto",
                      residual_in_fp32=True, use_mambapy=False, tie_word_embeddings=True)
    model = MambaForCausalLM(cfg).to("cuda", torch.float32).train()
    if hasattr(mm, "mamba_selective_scan"):
        # transformers 5.x: module-level wrappers call the kernels when importable and fall back to
        # torch otherwise (mamba_inner_fn returns None, the scan runs in torch); with the kernel
        # modules blocked above, the torch path is what runs.
        hf_mode = "5.x wrappers, kernel modules blocked"
    else:
        for g in ("selective_state_update", "selective_scan_fn", "causal_conv1d_fn", "causal_conv1d_update",
                  "mamba_inner_fn"):
            setattr(mm, g, None)
        assert not all(getattr(mm, g, None) for g in ("selective_scan_fn", "mamba_inner_fn", "causal_conv1d_fn"))
        hf_mode = "4.x slow_forward, fast-path globals cleared"
    ids_sets = [torch.randint(0, VOCAB, (B, L + 1), device="cuda") for _ in range(3)]
    st = _time_model(model, ids_sets, "L", args.hf_reps, 1)
    sink.emit(_row("train_step", "hf_torch", info, B, L, 1536, N_STATE, "train_step;hf_torch_path;fed=L",
                   st, model="mamba-130m", n_layer=24, d_model=768, transformers=transformers.__version__,
                   hf_path="MambaMixer torch path (" + hf_mode + "; use_mambapy=False)",
                   precision="bf16-autocast;fp32-weights", tokens_per_s=B * L / (st["median_us"] * 1e-6)))


# --------------------------------------------------------------------------------------------
def print_table(rows: list[dict]) -> None:
    print("\n%-22s %-10s %-40s %5s %5s %5s %12s %12s" % ("bench", "impl", "mode", "B", "L", "E", "median_us",
                                                         "tok/s"), file=sys.stderr)
    for r in rows:
        if "median_us" not in r:
            if "ok" in r:
                print(f"{r['bench']:<22} {r['impl']:<10} {r.get('dtype',''):<40} {r['B']:>5} {r['L']:>5} {r['E']:>5} "
                      f"{'OK' if r['ok'] else 'FAIL':>12}", file=sys.stderr)
            elif "error" in r:
                print(f"{r['bench']:<22} {r['impl']:<10} {r.get('mode',''):<40} ERROR {r['error'][:60]}", file=sys.stderr)
            continue
        tps = f"{r['tokens_per_s']:.0f}" if "tokens_per_s" in r else ""
        print(f"{r['bench']:<22} {r['impl']:<10} {r['mode'][:40]:<40} {r['B']:>5} {r['L']:>5} {r['E']:>5} "
              f"{r['median_us']:>12.1f} {tps:>12}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="ops,inner,model,hf")
    ap.add_argument("--reps", type=int, default=100, help="reps for ops/inner")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--sets", type=int, default=3, help="minimum number of rotated input sets")
    ap.add_argument("--layout", default="mamba_block", choices=["mamba_block", "contiguous", "ours_model"])
    ap.add_argument("--models", default="130m,370m")
    ap.add_argument("--model-batch", type=int, default=8)
    ap.add_argument("--model-seq", type=int, default=2048)
    ap.add_argument("--model-reps", type=int, default=10)
    ap.add_argument("--model-warmup", type=int, default=3)
    ap.add_argument("--model-fed", default="L+1,L",
                    help="'L+1': backbone on seq+1 ids like bench_model.cpp; 'L': on seq ids (usual)")
    ap.add_argument("--prefill-lengths", default="1024,4096", help="case 'prefill': B = 1 at these lengths")
    ap.add_argument("--infer-reps", type=int, default=30, help="case 'prefill': timed calls per length")
    ap.add_argument("--decode-batches", default="1,64", help="case 'decode': batch sizes")
    ap.add_argument("--decode-reps", type=int, default=5, help="case 'decode': timed generate calls per length")
    ap.add_argument("--decode-sampling", default="",
                    help="case 'decode': sample with these generate keywords, e.g. temperature=0.8,top_p=0.9 "
                         "(default: top_k=1, greedy)")
    ap.add_argument("--pretrain-steps", type=int, default=60, help="timed steps of case 'pretrain'")
    ap.add_argument("--pretrain-warmup", type=int, default=20)
    ap.add_argument("--pretrain-log", type=int, default=10, help="case 'pretrain' reads the loss every N steps")
    ap.add_argument("--hf-batch", type=int, default=1)
    ap.add_argument("--hf-seq", type=int, default=2048)
    ap.add_argument("--hf-reps", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="check kernels against a float64 reference first")
    ap.add_argument("--out", default=None, help="also append JSON lines to this file")
    ap.add_argument("--impl", default=None, choices=["hf_torch"],
                    help="run only the HF slow-path train step in this process (what case 'hf' spawns)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    if args.impl == "hf_torch":
        hf_child(args)
        return 0

    cases = [c for c in args.cases.split(",") if c]
    info = env_info()
    sink = Sink(args.out)
    rc = 0
    model_cases = ("model", "pretrain", "prefill", "decode")
    need_kernels = args.check or any(c in cases for c in ("ops", "inner") + model_cases)
    mods = {}
    if need_kernels:
        mods = import_mamba(need_model=any(c in cases for c in model_cases))
        import mamba_ssm
        info = {**info, "mamba_ssm": getattr(mamba_ssm, "__version__", "?")}
        try:
            import causal_conv1d
            info["causal_conv1d"] = getattr(causal_conv1d, "__version__", "?")
        except ImportError:
            pass
        if mods["shims"]:
            info["shims"] = mods["shims"]
    if args.check:
        if not run_check(mods, sink, info):
            print("CHECK FAILED: mamba_ssm kernels disagree with the float64 reference", file=sys.stderr)
            print_table(sink.rows)
            return 2
    in_process = {"ops": case_ops, "inner": case_inner, "model": case_model, "pretrain": case_pretrain,
                  "prefill": case_prefill, "decode": case_decode}
    for c in cases:
        t0 = time.time()
        if c in in_process:
            in_process[c](mods, sink, info, args)
        elif c == "hf":
            child = [sys.executable, os.path.abspath(__file__), "--impl", "hf_torch", "--hf-batch", str(args.hf_batch),
                     "--hf-seq", str(args.hf_seq), "--hf-reps", str(args.hf_reps)]
            if args.out:
                child += ["--out", args.out]
            if sink.fh:
                sink.fh.flush()
            p = subprocess.run(child, stdout=subprocess.PIPE, text=True)
            for line in p.stdout.splitlines():
                print(line, flush=True)
                try:
                    sink.rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
            if p.returncode:
                print(f"[hf] child failed rc={p.returncode}", file=sys.stderr)
                rc = 1
        else:
            raise SystemExit(f"unknown case {c!r} (valid: {', '.join(in_process)}, hf)")
        print(f"[{c}] {time.time() - t0:.1f} s", file=sys.stderr)
    print_table(sink.rows)
    return rc


if __name__ == "__main__":
    sys.exit(main())
