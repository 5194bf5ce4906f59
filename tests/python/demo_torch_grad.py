"""Wen's detection-loss gradients by PyTorch autograd on the demo model's own PyTorch definitions.

The demo's TextEncoder and UNet (native-models/sd_demo/models.py) get their weights back from the committed
ONNX export by native-models/sd_demo/recover.py (folded constants found with marker exports, checked by
re-exporting). Before any gradient, the modules' forward outputs are compared with the ONNX graphs' (run
node by node with torch operations by onnx_torch_grad.run, and, when IN_DIR holds them, ONNX Runtime's
outputs written by the caller): a definition that does not match the export stops the script, naming the
component and the difference (exit code 3).

Then, in float32, for each prompt (token ids), N noises x_k and timestep t:
  L_k = || eps(x_k, t, e_p) - eps(x_k, t, e_"") ||^2      (e_"" fixed, no gradient)
and its gradients w.r.t. e_p (the text encoder's output, the UNet's encoder_hidden_states) and, through the
text encoder, w.r.t. the token-embedding rows (the output of the embedding lookup, TextEncoder.tok).
Used by tests/integration/autodiff-demo-torch.test.ts.

    /usr/bin/python3 tests/python/demo_torch_grad.py IN_DIR OUT_DIR [--perturb NAME:REL [--perturb-before-check]]

IN_DIR: ids.npy [P, 77] int64, empty.npy [1, 77], noises.npy [N, 4, h, w] float32, meta.json {"t": 981,
"lengths": [...]} and optionally ort_cond.npy [P, 77, D], ort_uncond.npy [1, 77, D], ort_eps_uncond.npy
[N, 4, h, w] (ONNX Runtime's outputs of the same inputs).
OUT_DIR: loss_<i>.npy [N], grad_cond_<i>.npy [N, 77, D], grad_emb_<i>.npy [N, 77, D] per prompt i, and
summary.json {forward: {check: relative max difference}, significance: [{condition, embedding}]}.

--perturb NAME:REL scales one parameter (te.<name> or unet.<name>) by (1 + REL): after the forward check
(a perturbed model, the baseline a gradient check must reject), or before it with --perturb-before-check
(the forward check must then name the mismatch).
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "native-models", "sd_demo"))
from onnx_torch_grad import run  # noqa: E402
import recover  # noqa: E402

FORWARD_TOLERANCE = 1e-5


def rel_max(a, ref):
    """max |a - ref| / max |ref|: the forward check's measure."""
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-30))


def perturb(te, unet, spec):
    name, rel = spec.rsplit(":", 1)
    owner, key = name.split(".", 1)
    module = {"te": te, "unet": unet}[owner]
    params = dict(module.named_parameters())
    if key not in params:
        raise SystemExit(f"--perturb: {owner} has no parameter {key}")
    with torch.no_grad():
        params[key].mul_(1 + float(rel))


def forward_check(te, unet, ids_all, empty, noises, t, in_dir):
    """The torch modules against the ONNX export on the same inputs; exits naming the first mismatch."""
    text = onnx.load(os.path.join(recover.SD, "text_encoder", "model.onnx"))
    unet_onnx = onnx.load(os.path.join(recover.SD, "unet", "model.onnx"))
    n = noises.shape[0]
    figures = {}
    with torch.no_grad():
        cond = te(ids_all)
        uncond = te(empty)
        env, _ = run(text, {"input_ids": ids_all}, set())
        figures["text_encoder (prompts) vs ONNX graph"] = rel_max(cond, env["last_hidden_state"])
        env, _ = run(text, {"input_ids": empty}, set())
        figures["text_encoder (empty prompt) vs ONNX graph"] = rel_max(uncond, env["last_hidden_state"])
        ctx = torch.cat([uncond.repeat(n, 1, 1), cond[:1].repeat(n, 1, 1)])
        x = noises.repeat(2, 1, 1, 1)
        tt = torch.full((2 * n,), float(t))
        eps = unet(x, tt, ctx)
        env, _ = run(unet_onnx, {"sample": x, "timestep": tt, "encoder_hidden_states": ctx}, set())
        figures["unet vs ONNX graph"] = rel_max(eps, env["out_sample"])
        ort = {k: os.path.join(in_dir, f"ort_{k}.npy") for k in ("cond", "uncond", "eps_uncond")}
        if os.path.exists(ort["cond"]):
            figures["text_encoder (prompts) vs ONNX Runtime"] = rel_max(cond, np.load(ort["cond"]))
            figures["text_encoder (empty prompt) vs ONNX Runtime"] = rel_max(uncond, np.load(ort["uncond"]))
            figures["unet (empty prompt) vs ONNX Runtime"] = rel_max(eps[:n], np.load(ort["eps_uncond"]))
    for check, d in figures.items():
        if not d <= FORWARD_TOLERANCE:
            print(f"forward mismatch: {check}: the PyTorch definition (native-models/sd_demo/models.py) with the recovered "
                  f"weights differs by {d:.3e} (max |diff| / max |ref|; tolerance {FORWARD_TOLERANCE:g})", file=sys.stderr)
            sys.exit(3)
    return figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs")
    ap.add_argument("out")
    ap.add_argument("--perturb")
    ap.add_argument("--perturb-before-check", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    meta = json.load(open(os.path.join(args.inputs, "meta.json")))
    ids_all = torch.from_numpy(np.load(os.path.join(args.inputs, "ids.npy")).astype(np.int64))
    empty = torch.from_numpy(np.load(os.path.join(args.inputs, "empty.npy")).astype(np.int64))
    noises = torch.from_numpy(np.load(os.path.join(args.inputs, "noises.npy")).astype(np.float32))
    n = noises.shape[0]
    t = float(meta["t"])

    _, te, unet = recover.recover(("unet", "text_encoder"), log=lambda msg: print(msg, file=sys.stderr))
    if args.perturb and args.perturb_before_check:
        perturb(te, unet, args.perturb)
    figures = forward_check(te, unet, ids_all, empty, noises, t, args.inputs)
    if args.perturb and not args.perturb_before_check:
        perturb(te, unet, args.perturb)

    tt = torch.full((n,), t)
    with torch.no_grad():
        eps_u = unet(noises, tt, te(empty).repeat(n, 1, 1))
    # The embedding lookup's output, kept by a hook: the modules' own forward, unchanged.
    looked_up = []
    hook = te.tok.register_forward_hook(lambda module, inputs, output: looked_up.append(output))
    os.makedirs(args.out, exist_ok=True)
    significance = []
    for i, ids in enumerate(ids_all):
        looked_up.clear()
        cond = te(ids[None].repeat(n, 1))
        rows = looked_up[0]
        rows.retain_grad()
        cond.retain_grad()
        per = ((unet(noises, tt, cond) - eps_u) ** 2).reshape(n, -1).sum(1)
        te.zero_grad(), unet.zero_grad()
        per.sum().backward()
        np.save(os.path.join(args.out, f"loss_{i}.npy"), per.detach().numpy())
        np.save(os.path.join(args.out, f"grad_cond_{i}.npy"), cond.grad.numpy())
        np.save(os.path.join(args.out, f"grad_emb_{i}.npy"), rows.grad.numpy())
        length = int(meta["lengths"][i])
        significance.append({
            "condition": cond.grad.norm(dim=-1).mean(0)[:length].tolist(),
            "embedding": rows.grad.norm(dim=-1).mean(0)[:length].tolist(),
        })
    hook.remove()
    json.dump({"forward": figures, "significance": significance}, open(os.path.join(args.out, "summary.json"), "w"))


if __name__ == "__main__":
    main()
