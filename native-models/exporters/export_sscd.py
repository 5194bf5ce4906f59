"""Exports an SSCD copy-detection model (Pizzi et al. 2022, facebookresearch/sscd-copy-detection) to ONNX
in the layout Eidetic reads:

  <out>/model.onnx     input `input` float32 [B, 3, S, S] (ImageNet-normalised RGB) -> `embedding` [B, D], L2-normalised
  <out>/manifest.json  kind descriptor, preprocessing (below), threshold, sha256, parity

    # MemBench's setting, for every SSCD model (sscd_disc_mixup and sscd_disc_large alike): squash to 288x288
    /usr/bin/python3 native-models/exporters/export_sscd.py --checkpoint sscd_disc_large.torchscript.pt --out models/sscd-disc-large

    /usr/bin/python3 native-models/exporters/export_sscd.py --checkpoint sscd_disc_mixup.torchscript.pt --out models/sscd-disc-mixup
    /usr/bin/python3 native-models/exporters/export_sscd.py --checkpoint sscd_disc_mixup.torchvision.pt --out ... [--arch resnet50]
    /usr/bin/python3 native-models/exporters/export_sscd.py --checkpoint sscd_disc_large.classy.pt      --out ... [--arch resnext101_32x4d]

Accepted checkpoints (architecture and dimension are detected from the weights):
  * TorchScript files (`*.torchscript.pt`): loaded with torch.jit.load; their weights are copied into the
    eager model below, and the ONNX output is checked against the TorchScript module itself.
  * torchvision state dicts (`*.torchvision.pt`): SSCD's Model("TV_RESNET50", 512, 3.0): keys
    `backbone.conv1.weight`, `backbone.layer1.0.conv1.weight`, ..., `backbone.fc.{weight,bias}` (the
    projection 2048 -> D; GeM replaces avgpool and has no weights).
  * Classy Vision state dicts (`*.classy.pt`): Model("CV_RESNET50" | "CV_RESNEXT101", D, 3.0): keys
    `backbone.initial_block._module.{0,1}`, `backbone.blocks.<stage>.<i>._module.convolutional_block.{0,1,3,4,6}`,
    `..._module.bn`, `..._module.downsample.{0,1}`, and the projection `embeddings.1.{weight,bias}`.
    These are renamed to torchvision's ResNet names (same computation: stride on the 3x3 conv, groups 32
    and width 4 per group for ResNeXt-101 32x4d, which torchvision does not ship but its ResNet class builds).
  A leading `module.` / `model.` prefix and a {"state_dict": ...} wrapper are accepted.

Architecture exported: torchvision ResNet trunk (conv1 .. layer4) -> GeM (p = 3, clamp 1e-6) -> linear -> L2
normalisation, i.e. SSCD's. Parity: max |onnx - torch| over a few random images must be <= --tol (1e-4),
checked in onnxruntime when a runtime is available (node + onnxruntime-node, see verify_onnx.mjs); this script
always saves the probe inputs and the PyTorch outputs as .npy beside the manifest's parity record.
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
from torchvision.models.resnet import Bottleneck, ResNet

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

ARCHS = {
    "resnet50": dict(layers=[3, 4, 6, 3], groups=1, width_per_group=64),
    "resnext101_32x4d": dict(layers=[3, 4, 23, 3], groups=32, width_per_group=4),
}
KNOWN = {  # published SSCD models: name -> (arch, dim)
    "sscd_disc_mixup": ("resnet50", 512),
    "sscd_disc_advanced": ("resnet50", 512),
    "sscd_disc_blur": ("resnet50", 512),
    "sscd_imagenet_mixup": ("resnet50", 512),
    "sscd_imagenet_advanced": ("resnet50", 512),
    "sscd_imagenet_blur": ("resnet50", 512),
    "sscd_disc_large": ("resnext101_32x4d", 1024),
}


class GeM(nn.Module):
    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p, self.eps = p, eps

    def forward(self, x):
        n, c = x.shape[0], x.shape[1]
        return x.reshape(n, c, -1).clamp(min=self.eps).pow(self.p).mean(dim=2).pow(1.0 / self.p)


class SSCD(nn.Module):
    """trunk -> GeM -> linear -> L2 normalisation."""

    def __init__(self, arch, dim, p=3.0):
        super().__init__()
        a = ARCHS[arch]
        self.trunk = ResNet(Bottleneck, a["layers"], groups=a["groups"], width_per_group=a["width_per_group"])
        self.trunk.avgpool = nn.Identity()
        self.trunk.fc = nn.Identity()
        self.pool = GeM(p)
        self.fc = nn.Linear(2048, dim)

    def features(self, x):
        t = self.trunk
        x = t.maxpool(t.relu(t.bn1(t.conv1(x))))
        return t.layer4(t.layer3(t.layer2(t.layer1(x))))

    def forward(self, input):
        return F.normalize(self.fc(self.pool(self.features(input))), dim=1)


# ---------------------------------------------------------------- checkpoint loading and key mapping

def strip_prefixes(sd):
    if "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out = {}
    for k, v in sd.items():
        for p in ("module.", "model."):
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


def detect_layout(sd):
    keys = list(sd)
    if any(k.startswith("backbone.initial_block.") or ".convolutional_block." in k for k in keys):
        return "classy"
    if any(re.match(r"(backbone\.)?layer\d\.", k) for k in keys):
        return "torchvision"
    raise ValueError("unrecognised SSCD checkpoint: neither torchvision (backbone.layer1...) nor Classy Vision (backbone.blocks...) keys")


CLASSY_CONV = {"0": "conv1", "1": "bn1", "3": "conv2", "4": "bn2", "6": "conv3"}


def map_classy(sd):
    """Classy Vision ResNe(X)t names -> SSCD module (torchvision names). Returns (mapped, ignored keys)."""
    out, ignored = {}, []
    for k, v in sd.items():
        m = re.match(r"backbone\.initial_block\._module\.(\d)\.(.+)$", k)
        if m:
            out[f"trunk.{'conv1' if m.group(1) == '0' else 'bn1'}.{m.group(2)}"] = v
            continue
        m = re.match(r"backbone\.blocks\.(\d)\.(\d+)\._module\.(.+)$", k)
        if m:
            stage, idx, rest = int(m.group(1)), m.group(2), m.group(3)
            base = f"trunk.layer{stage + 1}.{idx}."
            mc = re.match(r"convolutional_block\.(\d)\.(.+)$", rest)
            if mc and mc.group(1) in CLASSY_CONV:
                out[base + CLASSY_CONV[mc.group(1)] + "." + mc.group(2)] = v
            elif rest.startswith("bn."):
                out[base + "bn3." + rest[3:]] = v
            elif rest.startswith("downsample."):
                out[base + rest] = v
            else:
                ignored.append(k)
            continue
        m = re.match(r"embeddings\.1\.(weight|bias)$", k)
        if m:
            out["fc." + m.group(1)] = v
            continue
        ignored.append(k)
    return out, ignored


def map_torchvision(sd):
    out, ignored = {}, []
    for k, v in sd.items():
        kk = k[len("backbone."):] if k.startswith("backbone.") else k
        if kk.startswith("fc."):
            out["fc." + kk[3:]] = v
        elif re.match(r"(conv1|bn1|layer\d)\.", kk):
            out["trunk." + kk] = v
        else:
            ignored.append(k)
    return out, ignored


def infer_arch_dim(mapped):
    dim = mapped["fc.weight"].shape[0]
    n3 = len({k.split(".")[2] for k in mapped if k.startswith("trunk.layer3.")})
    w = mapped["trunk.layer1.0.conv2.weight"]  # [width, width/groups, 3, 3]
    groups = w.shape[0] // w.shape[1]
    if n3 == 6 and groups == 1:
        return "resnet50", dim
    if n3 == 23 and groups == 32:
        return "resnext101_32x4d", dim
    raise ValueError(f"unsupported trunk: {n3} blocks in layer3, {groups} groups (resnet50 and resnext101_32x4d are supported)")


def load_checkpoint(path):
    """-> (state dict in SSCD-module names, layout, reference module or None, ignored keys)."""
    reference = None
    try:
        reference = torch.jit.load(path, map_location="cpu")
        sd = {k: v for k, v in reference.state_dict().items()}
        kind = "torchscript"
    except Exception:  # not TorchScript: a pickled state dict
        sd = torch.load(path, map_location="cpu")
        kind = "state_dict"
    sd = strip_prefixes(sd)
    layout = detect_layout(sd)
    mapped, ignored = (map_classy if layout == "classy" else map_torchvision)(sd)
    return mapped, f"{kind}/{layout}", reference, ignored


def build_model(mapped, arch=None, dim=None):
    a, d = infer_arch_dim(mapped)
    if arch and arch != a:
        raise ValueError(f"--arch {arch} given but the weights are a {a}")
    if dim and dim != d:
        raise ValueError(f"--dim {dim} given but the projection has {d} outputs")
    model = SSCD(a, d)
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"state dict mismatch: missing {missing[:8]}, unexpected {unexpected[:8]}")
    return model.eval(), a, d


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_node_parity(onnx_path, expected, inputs, tol):
    """Checks the ONNX file in onnxruntime-node; returns max abs diff or None when node/ort is unavailable."""
    script = os.path.join(HERE, "verify_onnx.mjs")
    try:
        r = subprocess.run(["node", script, onnx_path, expected] + [f"{k}={v}" for k, v in inputs.items()] + ["--tol", str(tol)],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return None, "node not available"
    m = re.search(r"max abs diff ([0-9.e+-]+)", r.stdout)
    if not m:
        return None, (r.stdout + r.stderr).strip()[-400:]
    return float(m.group(1)), r.stdout.strip()


PREPROCESS = {
    # MemBench: the image squashed to size x size (aspect not kept), ImageNet mean/std on [0,1] RGB.
    "squash": lambda size, resize: {"mode": "squash", "resize": size, "mean": MEAN, "std": STD, "input_range": [0, 1]},
    # Wen's and DCR's code: Resize(resize) on the shorter side (aspect kept), CenterCrop(size), Normalize(0.5, 0.5).
    "resize-center-crop": lambda size, resize: {"mode": "resize-center-crop", "resize": resize, "crop": size,
                                               "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "input_range": [0, 1]},
}


def export(checkpoint, out, size=288, arch=None, dim=None, tol=1e-4, name=None, threshold=0.75, probe_images=3, opset=14, ort=True, seed=0,
           preprocess="squash", resize=None):
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS)} (got {preprocess})")
    resize = resize or (size if preprocess == "squash" else round(size * 256 / 224))
    if preprocess == "resize-center-crop" and resize < size:
        raise ValueError(f"--resize ({resize}) must be at least the crop --size ({size})")
    t0 = time.time()
    mapped, layout, reference, ignored = load_checkpoint(checkpoint)
    model, arch, dim = build_model(mapped, arch, dim)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    probe = torch.randn(probe_images, 3, size, size)
    with torch.no_grad():
        want = model(probe)
        ref_diff = None
        if reference is not None:  # the eager copy must match the TorchScript original
            ref = reference(probe)
            ref_diff = float((ref - want).abs().max())
            if ref_diff > tol:
                raise ValueError(f"eager model differs from the TorchScript module by {ref_diff:.2e} (> {tol})")
    onnx_path = os.path.join(out, "model.onnx")
    torch.onnx.export(model, (probe[:1],), onnx_path, input_names=["input"], output_names=["embedding"],
                      dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=opset, do_constant_folding=True)
    parity_dir = os.path.join(out, "parity")
    os.makedirs(parity_dir, exist_ok=True)
    np.save(os.path.join(parity_dir, "input.npy"), probe.numpy())
    np.save(os.path.join(parity_dir, "embedding.npy"), (ref if reference is not None else want).numpy())
    ort_diff, ort_msg = (None, "not run")
    if ort:
        ort_diff, ort_msg = run_node_parity(onnx_path, os.path.join(parity_dir, "embedding.npy"), {"input": os.path.join(parity_dir, "input.npy")}, tol)
        if ort_diff is not None and ort_diff > tol:
            raise ValueError(f"ONNX output differs from PyTorch by {ort_diff:.2e} (> {tol})")
    name = name or os.path.basename(checkpoint).split(".")[0]
    manifest = {
        "name": name,
        "kind": "descriptor",
        "format": "onnx-sscd",
        "architecture": f"{arch} trunk -> GeM p=3 -> linear 2048->{dim} -> L2 norm",
        "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 3, size, size], "description": "RGB normalised as preprocessing says"}],
        "outputs": [{"name": "embedding", "dtype": "float32", "shape": ["batch", dim], "description": "L2-normalised descriptor; similarity = dot product"}],
        "dim": dim,
        "preprocessing": PREPROCESS[preprocess](size, resize),
        "threshold": threshold,
        "threshold_note": "0.75: about 90% precision on DISC for sscd_disc_mixup (SSCD README); 0.5 is the 'copy' level of the memorization papers",
        "licence": "SSCD weights: CC-BY-NC 4.0 (facebookresearch/sscd-copy-detection); check before redistribution",
        "source": {"checkpoint": os.path.basename(checkpoint), "checkpoint_sha256": sha256(checkpoint), "layout": layout, "ignored_keys": ignored},
        "parity": {"probe": f"{probe_images} images N(0,1) [{probe_images},3,{size},{size}], seed {seed}", "tolerance": tol,
                   "torchscript_vs_eager_max_abs": ref_diff, "onnxruntime_vs_torch_max_abs": ort_diff, "onnxruntime": ort_msg},
        "recipe": "/usr/bin/python3 native-models/exporters/export_sscd.py --checkpoint %s --out %s --size %d --preprocess %s%s" % (
            os.path.basename(checkpoint), out, size, preprocess, f" --resize {resize}" if preprocess != "squash" else ""),
        "files": {"model.onnx": {"sha256": sha256(onnx_path), "bytes": os.path.getsize(onnx_path)}},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"exported {name} ({layout}, {arch}, {dim}-d, input {size}) to {out} in {time.time() - t0:.0f} s; "
          f"onnxruntime max abs diff {ort_diff}", flush=True)
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="SSCD .torchscript.pt, .torchvision.pt or .classy.pt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=288, help="square input size: 288 (MemBench, for disc_mixup and disc_large alike), 320 (SSCD skew_320), 224 (Wen/DCR crop)")
    ap.add_argument("--preprocess", choices=list(PREPROCESS), default="squash",
                    help="squash: resize to size x size, aspect not kept, ImageNet mean/std (MemBench); resize-center-crop: shorter side to --resize, "
                         "centre crop of --size, mean/std 0.5 (Wen's and DCR's code: Resize(256), CenterCrop(224))")
    ap.add_argument("--resize", type=int, help="resize-center-crop: the shorter side's length before the crop (default size x 256/224)")
    ap.add_argument("--arch", choices=list(ARCHS), help="check the detected architecture")
    ap.add_argument("--dim", type=int, help="check the detected descriptor dimension")
    ap.add_argument("--name")
    ap.add_argument("--threshold", type=float, default=0.75)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--no-ort", action="store_true", help="skip the onnxruntime-node parity run")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        export(args.checkpoint, args.out, args.size, args.arch, args.dim, args.tol, args.name, args.threshold, ort=not args.no_ort,
               preprocess=args.preprocess, resize=args.resize)
    except ValueError as e:
        print(f"export_sscd: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
