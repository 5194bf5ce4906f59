"""Builds the demo copy-detection descriptor in SSCD's layout and exports it to
native-models/demo/sscd-demo (model.onnx: input [B,3,S,S] ImageNet-normalised RGB -> embedding [B,D],
L2-normalised; manifest.json with the preprocessing and the demo threshold).

    /usr/bin/python3 native-models/descriptor_demo/train.py [--minutes M]

Architecture as SSCD: CNN backbone -> GeM pooling (p = 3) -> linear -> L2 normalisation. Trained
self-supervised (SimCLR-style InfoNCE) on the demo images with copy-detection augmentations: crops,
colour jitter, blur, JPEG re-encoding, overlays of other emoji, grey borders of random width and level
(the demo images carry SolidMark borders), flips. Seeds fixed; CPU only.
"""
import argparse
import io
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageFilter

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLEAN = os.path.join(ROOT, "native-models", "demo", "dataset", "clean")
OUT = os.path.join(ROOT, "native-models", "demo", "sscd-demo")
SIZE = 64
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
SEED = 4321


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class GeM(nn.Module):
    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p, self.eps = p, eps

    def forward(self, x):
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


def block(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Descriptor(nn.Module):
    def __init__(self, dim=128):
        super().__init__()
        self.backbone = nn.Sequential(block(3, 32, 2), block(32, 48, 1), block(48, 64, 2), block(64, 96, 1), block(96, 128, 2), block(128, 160, 1))
        self.pool = GeM()
        self.fc = nn.Linear(160, dim)

    def forward(self, input):
        return F.normalize(self.fc(self.pool(self.backbone(input))), dim=1)


def with_border(img, width, level):
    w, h = img.size
    out = Image.new("RGB", (w + 2 * width, h + 2 * width), (level, level, level))
    out.paste(img, (width, width))
    return out


def augment(img, others, rng):
    """A copy-detection view: the kinds of edits a copier (or a memorizing model) makes."""
    if rng.random() < 0.8:
        img = with_border(img, rng.randint(1, 12), rng.randint(0, 255))
    w, h = img.size
    s = rng.uniform(0.55, 1.0)
    cw, ch = int(w * s), int(h * rng.uniform(max(0.55, s * 0.8), min(1.0, s * 1.25)))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - min(ch, h))
    img = img.crop((x, y, x + cw, y + min(ch, h)))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    img = img.resize((SIZE, SIZE), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255
    if rng.random() < 0.8:  # colour jitter: brightness, contrast, saturation
        arr = arr * rng.uniform(0.7, 1.3)
        arr = (arr - arr.mean()) * rng.uniform(0.7, 1.3) + arr.mean()
        grey = arr.mean(axis=2, keepdims=True)
        arr = grey + (arr - grey) * rng.uniform(0.6, 1.4)
    img = Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.3:  # overlay a small patch of another emoji
        o = others[rng.randrange(len(others))].resize((rng.randint(10, 22),) * 2)
        img.paste(o, (rng.randint(0, SIZE - o.size[0]), rng.randint(0, SIZE - o.size[1])))
    if rng.random() < 0.4:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=rng.randint(30, 90))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return to_tensor(img)


def to_tensor(img):
    arr = (np.asarray(img.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32) / 255 - MEAN) / STD
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def info_nce(a, b, temperature=0.07):
    logits = a @ b.t() / temperature
    target = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=12)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    files = sorted(os.listdir(CLEAN))
    images = [Image.open(os.path.join(CLEAN, f)).convert("RGB") for f in files]
    model = Descriptor()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    deadline = time.time() + args.minutes * 60
    step = 0
    while time.time() < deadline:
        idx = rng.sample(range(len(images)), 96)
        a = torch.stack([augment(images[i], images, rng) for i in idx])
        b = torch.stack([augment(images[i], images, rng) for i in idx])
        loss = info_nce(model(a), model(b))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            log(f"step {step}: loss {loss.item():.4f}, {max(0, deadline - time.time()) / 60:.1f} min left")
        step += 1
    model.eval()

    # Self-check: an augmented copy of each image must find its original; distinct images must not pass.
    with torch.no_grad():
        originals = torch.cat([model(torch.stack([to_tensor(im) for im in images[i:i + 200]])) for i in range(0, len(images), 200)])
        check = random.Random(99)
        copies = torch.cat([model(torch.stack([augment(im, images, check) for im in images[i:i + 200]])) for i in range(0, len(images), 200)])
        keyed = torch.cat([model(torch.stack([to_tensor(with_border(im, 8, check.randint(0, 255))) for im in images[i:i + 200]])) for i in range(0, len(images), 200)])
    sims = copies @ originals.t()
    rank1 = (sims.argmax(1) == torch.arange(len(images))).float().mean().item()
    positives = sims.diag()
    off = originals @ originals.t()
    distinct = off[~torch.eye(len(images), dtype=torch.bool)]
    threshold = float(torch.quantile(distinct, 0.999))
    keyed_sim = (keyed * originals).sum(1)
    report = {
        "augmented_copy_rank1": rank1,
        "augmented_copy_similarity_median": float(positives.median()),
        "augmented_copy_above_threshold": float((positives > threshold).float().mean()),
        "keyed_vs_clean_similarity_median": float(keyed_sim.median()),
        "distinct_pairs_similarity_p99_9": threshold,
        "distinct_pairs_similarity_median": float(distinct.median()),
        "training_steps": step,
    }
    log(json.dumps(report))

    os.makedirs(OUT, exist_ok=True)
    torch.onnx.export(model, (torch.zeros(2, 3, SIZE, SIZE),), os.path.join(OUT, "model.onnx"), input_names=["input"], output_names=["embedding"],
                      dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=17, do_constant_folding=True)
    manifest = {
        "name": "eidetic-demo-sscd",
        "kind": "descriptor",
        "format": "onnx-sscd",
        "inputs": {"input": "float32 [batch, 3, 64, 64], ImageNet-normalised RGB"},
        "outputs": {"embedding": "float32 [batch, 128], L2-normalised"},
        "dim": 128,
        "preprocessing": {"resize": SIZE, "mode": "squash", "mean": MEAN.tolist(), "std": STD.tolist(), "input_range": [0, 1]},
        "threshold": round(max(threshold, 0.5), 4),
        "licence": "Apache-2.0 (trained on Noto Emoji renders, Apache-2.0)",
        "recipe": "/usr/bin/python3 native-models/descriptor_demo/train.py --minutes %g" % args.minutes,
        "self_check": report,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    log(f"exported to {OUT}")


if __name__ == "__main__":
    main()
