"""Exports the LAION improved aesthetic predictor (christophschuhmann/improved-aesthetic-predictor) to ONNX:

  <out>/model.onnx     input `embedding` float32 [B, 768] (CLIP ViT-L/14 image embedding) -> `score` float32 [B, 1]
  <out>/manifest.json  kind aesthetic, format onnx-aesthetic-mlp, sha256, parity

    /usr/bin/python3 native-models/exporters/export_aesthetic.py --checkpoint sac+logos+ava1-l14-linearMSE.pth --out models/aesthetic

The predictor is an MLP 768 -> 1024 -> 128 -> 64 -> 16 -> 1 without activations, with dropout after the
first three linear layers (inactive at inference): `nn.Sequential(Linear, Dropout, Linear, Dropout, Linear,
Dropout, Linear, Linear)`, so the state-dict keys are `layers.{0,2,4,6,7}.{weight,bias}`. The original
scores L2-normalised CLIP embeddings; the exported graph L2-normalises its input first (idempotent for an
input that is already normalised), so callers may pass raw or normalised CLIP ViT-L/14 image embeddings.
`--no-normalise` leaves the normalisation out.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
LINEAR_INDICES = [0, 2, 4, 6, 7]
SIZES = [768, 1024, 128, 64, 16, 1]


class AestheticMLP(nn.Module):
    """Same module structure (and state-dict keys) as the original MLP."""

    def __init__(self, input_size=768, normalise=True):
        super().__init__()
        self.normalise = normalise
        self.layers = nn.Sequential(
            nn.Linear(input_size, 1024), nn.Dropout(0.2),
            nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, embedding):
        if self.normalise:
            embedding = F.normalize(embedding, dim=1)
        return self.layers(embedding)


def load_state_dict(path):
    sd = torch.load(path, map_location="cpu")
    if "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out = {}
    for k, v in sd.items():
        for p in ("module.", "model."):
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    expected = {f"layers.{i}.{w}" for i in LINEAR_INDICES for w in ("weight", "bias")}
    missing = sorted(expected - set(out))
    if missing:
        raise ValueError(f"not an improved-aesthetic-predictor state dict: missing {missing} (keys present: {sorted(out)[:10]})")
    for j, i in enumerate(LINEAR_INDICES):
        shape = tuple(out[f"layers.{i}.weight"].shape)
        if j > 0 and shape != (SIZES[j + 1], SIZES[j]):
            raise ValueError(f"layers.{i}.weight has shape {shape}, expected {(SIZES[j + 1], SIZES[j])}")
    return {k: v for k, v in out.items() if k in expected}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_node_parity(onnx_path, expected, inputs, tol):
    script = os.path.join(HERE, "verify_onnx.mjs")
    try:
        r = subprocess.run(["node", script, onnx_path, expected] + [f"{k}={v}" for k, v in inputs.items()] + ["--tol", str(tol)],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None, "node not available"
    m = re.search(r"max abs diff ([0-9.e+-]+)", r.stdout)
    if not m:
        return None, (r.stdout + r.stderr).strip()[-400:]
    return float(m.group(1)), r.stdout.strip()


def export(checkpoint, out, normalise=True, tol=1e-4, name=None, ort=True, seed=0, probe_rows=8):
    t0 = time.time()
    sd = load_state_dict(checkpoint)
    input_size = sd["layers.0.weight"].shape[1]
    model = AestheticMLP(input_size, normalise).eval()
    model.load_state_dict(sd)
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    probe = F.normalize(torch.randn(probe_rows, input_size, generator=g), dim=1)  # like normalised CLIP embeddings
    with torch.no_grad():
        want = model(probe)
    onnx_path = os.path.join(out, "model.onnx")
    torch.onnx.export(model, (probe[:2],), onnx_path, input_names=["embedding"], output_names=["score"],
                      dynamic_axes={"embedding": {0: "batch"}, "score": {0: "batch"}}, opset_version=14, do_constant_folding=True)
    parity_dir = os.path.join(out, "parity")
    os.makedirs(parity_dir, exist_ok=True)
    np.save(os.path.join(parity_dir, "embedding.npy"), probe.numpy())
    np.save(os.path.join(parity_dir, "score.npy"), want.numpy())
    ort_diff, ort_msg = (None, "not run")
    if ort:
        ort_diff, ort_msg = run_node_parity(onnx_path, os.path.join(parity_dir, "score.npy"), {"embedding": os.path.join(parity_dir, "embedding.npy")}, tol)
        if ort_diff is not None and ort_diff > tol:
            raise ValueError(f"ONNX output differs from PyTorch by {ort_diff:.2e} (> {tol})")
    name = name or os.path.basename(checkpoint).rsplit(".", 1)[0]
    manifest = {
        "name": name,
        "kind": "aesthetic",
        "format": "onnx-aesthetic-mlp",
        "architecture": "MLP 768-1024-128-64-16-1, no activations (LAION improved aesthetic predictor)",
        "inputs": [{"name": "embedding", "dtype": "float32", "shape": ["batch", input_size],
                    "description": "CLIP ViT-L/14 image embedding" + (" (L2-normalised inside the graph)" if normalise else " (must be L2-normalised)")}],
        "outputs": [{"name": "score", "dtype": "float32", "shape": ["batch", 1], "description": "aesthetic score, about 1-10"}],
        "normalises_input": normalise,
        "clip_model": "ViT-L/14 (openai), image embedding (visual projection output, 768-d)",
        "licence": "Apache-2.0 (christophschuhmann/improved-aesthetic-predictor)",
        "source": {"checkpoint": os.path.basename(checkpoint), "checkpoint_sha256": sha256(checkpoint)},
        "parity": {"probe": f"{probe_rows} L2-normalised N(0,1) rows, seed {seed}", "tolerance": tol, "onnxruntime_vs_torch_max_abs": ort_diff, "onnxruntime": ort_msg},
        "recipe": "/usr/bin/python3 native-models/exporters/export_aesthetic.py --checkpoint %s --out %s%s" % (os.path.basename(checkpoint), out, "" if normalise else " --no-normalise"),
        "files": {"model.onnx": {"sha256": sha256(onnx_path), "bytes": os.path.getsize(onnx_path)}},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"exported {name} to {out} in {time.time() - t0:.1f} s; onnxruntime max abs diff {ort_diff}", flush=True)
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="e.g. sac+logos+ava1-l14-linearMSE.pth")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-normalise", action="store_true", help="do not L2-normalise the input inside the graph")
    ap.add_argument("--name")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--no-ort", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    try:
        export(args.checkpoint, args.out, not args.no_normalise, args.tol, args.name, ort=not args.no_ort)
    except ValueError as e:
        print(f"export_aesthetic: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
