"""Builds the demo copy-detection descriptor in SSCD's layout and exports it to
native-models/demo/sscd-demo:

  model.onnx     input  `input`     float32 [B, 3, S, S], ImageNet-normalised RGB (S = 64)
                 output `embedding` float32 [B, 128], L2-normalised
  manifest.json  preprocessing (resize S, squash), demo threshold, self-check figures, sha256 of files

    /usr/bin/python3 native-models/descriptor_demo/train.py [--steps 500] [--batch 96] [--threads 2]

Architecture as SSCD: CNN backbone (a small ResNet) -> GeM pooling (p = 3) -> linear -> L2 normalisation.
Trained self-supervised (SimCLR-style InfoNCE, as SSCD, plus SSCD's entropy regulariser) on the 1000 demo
images with copy-detection augmentations: random resized crops, flips, colour jitter, greyscale, blur,
noise, JPEG re-encoding, overlays of other emoji and of text, grey borders of random level and width
0-12 px (the demo training images carry 8 px SolidMark borders). Each view starts from either the clean
48x48 render or a keyed 64x64 version (8 px border of a random grey). Seeds fixed; CPU only; 2 threads.
"""
import argparse
import hashlib
import io
import json
import os
import random
import string
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLEAN = os.path.join(ROOT, "native-models", "demo", "dataset", "clean")
OUT = os.path.join(ROOT, "native-models", "demo", "sscd-demo")
BUILD = os.path.join(ROOT, "native-models", "build", "descriptor_demo")
SIZE = 64
DIM = 128
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
SEED = 4321
FONT = ImageFont.load_default()  # PIL's built-in bitmap font: identical on every machine


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- model

class GeM(nn.Module):
    """Generalised mean pooling, p = 3 (as SSCD)."""

    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p, self.eps = p, eps

    def forward(self, x):
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Descriptor(nn.Module):
    """backbone -> GeM -> linear -> L2 norm; module names follow SSCD (backbone, embeddings)."""

    def __init__(self, dim=DIM):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True),  # 64 -> 32
            BasicBlock(24, 32, 2),    # 16
            BasicBlock(32, 64, 2),    # 8
            BasicBlock(64, 128, 2),   # 4
        )
        self.pool = GeM()
        self.embeddings = nn.Linear(128, dim)

    def forward(self, input):
        return F.normalize(self.embeddings(self.pool(self.backbone(input))), dim=1)


# ---------------------------------------------------------------- augmentations

def with_border(img, width, level):
    if width <= 0:
        return img
    w, h = img.size
    out = Image.new("RGB", (w + 2 * width, h + 2 * width), (level, level, level))
    out.paste(img, (width, width))
    return out


def keyed(img, rng):
    """The training-set form: 8 px SolidMark border of a random grey level (48 -> 64)."""
    return with_border(img, 8, rng.randint(0, 255))


def random_text(rng):
    n = rng.randint(2, 8)
    return "".join(rng.choice(string.ascii_letters + string.digits + " ") for _ in range(n))


def augment(img, others, rng, strong=True):
    """A copy-detection view: the kinds of edits a copier (or a memorizing model) makes."""
    if rng.random() < 0.5:
        img = keyed(img, rng)
    if rng.random() < 0.5:
        img = with_border(img, rng.randint(0, 12), rng.randint(0, 255))
    # random resized crop: area 45-100%, aspect 3/4 - 4/3
    w, h = img.size
    for _ in range(10):
        area = rng.uniform(0.45, 1.0) * w * h
        ar = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = int(round((area * ar) ** 0.5)), int(round((area / ar) ** 0.5))
        if cw <= w and ch <= h:
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            img = img.crop((x, y, x + cw, y + ch))
            break
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    img = img.resize((SIZE, SIZE), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255
    if rng.random() < 0.8:  # colour jitter: brightness, contrast, saturation, small hue-ish channel gains
        arr = arr * rng.uniform(0.6, 1.4)
        m = arr.mean()
        arr = (arr - m) * rng.uniform(0.6, 1.4) + m
        grey = arr.mean(axis=2, keepdims=True)
        arr = grey + (arr - grey) * rng.uniform(0.5, 1.5)
        arr = arr * np.array([rng.uniform(0.9, 1.1) for _ in range(3)], dtype=np.float32)
    if rng.random() < 0.1:
        arr = np.repeat(arr.mean(axis=2, keepdims=True), 3, axis=2)
    if rng.random() < 0.2:
        arr = arr + np.random.default_rng(rng.randrange(2**31)).normal(0, rng.uniform(0.01, 0.06), arr.shape).astype(np.float32)
    img = Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8))
    if rng.random() < 0.4:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.6)))
    if rng.random() < 0.25:  # overlay a small patch of another emoji
        o = others[rng.randrange(len(others))].resize((rng.randint(10, 24),) * 2, Image.BILINEAR)
        img.paste(o, (rng.randint(0, SIZE - o.size[0]), rng.randint(0, SIZE - o.size[1])))
    if rng.random() < 0.25:  # overlay text
        d = ImageDraw.Draw(img)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        d.text((rng.randint(-4, SIZE - 20), rng.randint(-2, SIZE - 10)), random_text(rng), fill=colour, font=FONT)
    if rng.random() < 0.4:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=rng.randint(20, 90))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return to_tensor(img)


def to_tensor(img):
    """The app's preprocessing: RGB, squash-resize to SIZE x SIZE (bilinear), [0,1], ImageNet mean/std."""
    arr = (np.asarray(img.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32) / 255 - MEAN) / STD
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


# ---------------------------------------------------------------- training

def info_nce(a, b, temperature=0.05):
    logits = a @ b.t() / temperature
    target = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def entropy_reg(z):
    """SSCD's differential-entropy (KoLeo) regulariser: push each embedding away from its nearest neighbour."""
    with torch.no_grad():
        d = z @ z.t()
        d.fill_diagonal_(-2)
        nn_idx = d.argmax(1)
    dist = (z - z[nn_idx]).norm(dim=1)
    return -torch.log(dist + 1e-8).mean()


def embed(model, tensors, bs=250):
    with torch.no_grad():
        return torch.cat([model(torch.stack(tensors[i:i + bs])) for i in range(0, len(tensors), bs)])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2, help="1 when another job shares the 2 cores (oversubscription is ~4x slower)")
    ap.add_argument("--out", default=OUT, help="export folder (default native-models/demo/sscd-demo)")
    ap.add_argument("--build", default=BUILD, help="checkpoint and parity-probe folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    np.random.seed(SEED)
    t0 = time.time()
    files = sorted(f for f in os.listdir(CLEAN) if f.endswith(".png"))
    images = [Image.open(os.path.join(CLEAN, f)).convert("RGB") for f in files]
    model = Descriptor()
    log(f"{len(images)} images, {sum(p.numel() for p in model.parameters())} parameters, input {SIZE}x{SIZE}, dim {DIM}")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    start = time.time()
    order = []
    for step in range(args.steps):
        for g in opt.param_groups:  # warm-up then cosine decay
            g["lr"] = 3e-3 * min(1.0, (step + 1) / 30) * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        if len(order) < args.batch:
            perm = list(range(len(images)))
            rng.shuffle(perm)
            order += perm
        idx, order = order[:args.batch], order[args.batch:]
        a = model(torch.stack([augment(images[i], images, rng) for i in idx]))
        b = model(torch.stack([augment(images[i], images, rng) for i in idx]))
        loss_c = info_nce(a, b)
        loss_e = entropy_reg(torch.cat([a, b]))
        loss = loss_c + 0.1 * loss_e
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
            el = time.time() - start
            log(f"step {step}/{args.steps}: infonce {loss_c.item():.4f} entropy {loss_e.item():.3f} lr {opt.param_groups[0]['lr']:.2e}, {el / 60:.1f} min, ~{el / (step + 1) * (args.steps - step - 1) / 60:.1f} min left")
    step = args.steps
    train_minutes = (time.time() - start) / 60
    model.eval()
    os.makedirs(args.build, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.build, "descriptor.pt"))

    # ------------------------------------------------------------ self-check
    check = random.Random(99)
    n = len(images)
    originals = embed(model, [to_tensor(im) for im in images])
    copies = embed(model, [augment(im, images, check) for im in images])
    keyed_emb = embed(model, [to_tensor(keyed(im, check)) for im in images])
    eye = torch.eye(n, dtype=torch.bool)
    sims = copies @ originals.t()
    rank1 = (sims.argmax(1) == torch.arange(n)).float().mean().item()
    keyed_sims = keyed_emb @ originals.t()
    keyed_rank1 = (keyed_sims.argmax(1) == torch.arange(n)).float().mean().item()
    positives = sims.diag()
    keyed_pos = keyed_sims.diag()
    distinct_orig = (originals @ originals.t())[~eye]
    distinct_copy = sims[~eye]
    distinct = torch.cat([distinct_orig, distinct_copy])
    threshold = float(torch.quantile(distinct, 0.99))

    def q(t):
        return {k: round(float(torch.quantile(t, v)), 4) for k, v in (("p1", 0.01), ("p5", 0.05), ("median", 0.5), ("p95", 0.95), ("p99", 0.99), ("p99_9", 0.999))}

    report = {
        "augmented_copy_rank1": round(rank1, 4),
        "keyed_vs_clean_rank1": round(keyed_rank1, 4),
        "augmented_copy_cosine": q(positives),
        "keyed_vs_clean_cosine": q(keyed_pos),
        "distinct_pairs_cosine": q(distinct),
        "distinct_clean_pairs_cosine": q(distinct_orig),
        "threshold_rule": "99th percentile of distinct-image pairs (clean-clean and augmented-copy vs other clean image)",
        "augmented_copy_above_threshold": round(float((positives > threshold).float().mean()), 4),
        "keyed_vs_clean_above_threshold": round(float((keyed_pos > threshold).float().mean()), 4),
        "distinct_above_threshold": round(float((distinct > threshold).float().mean()), 4),
        "distinct_above_0_5": round(float((distinct > 0.5).float().mean()), 4),
        "augmented_copy_above_0_5": round(float((positives > 0.5).float().mean()), 4),
        "training_steps": step,
        "batch": args.batch,
        "training_minutes": round(train_minutes, 1),
    }
    log(json.dumps(report, indent=1))

    # ------------------------------------------------------------ export
    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "model.onnx")
    torch.onnx.export(model, (torch.zeros(2, 3, SIZE, SIZE),), onnx_path, input_names=["input"], output_names=["embedding"],
                      dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=14, do_constant_folding=True)
    # parity inputs for the export check (node/onnxruntime): a few augmented copies
    manifest = {
        "name": "eidetic-demo-sscd",
        "kind": "descriptor",
        "format": "onnx-sscd",
        "architecture": "small ResNet (3x3/2 stem + 3 strided basic blocks, 24-32-64-128 ch) -> GeM p=3 -> linear 128->128 -> L2 norm",
        "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 3, SIZE, SIZE], "description": "ImageNet-normalised RGB"}],
        "outputs": [{"name": "embedding", "dtype": "float32", "shape": ["batch", DIM], "description": "L2-normalised descriptor; similarity = dot product"}],
        "dim": DIM,
        "preprocessing": {"resize": SIZE, "mode": "squash", "mean": MEAN.tolist(), "std": STD.tolist(), "input_range": [0, 1]},
        "threshold": round(threshold, 4),
        "threshold_note": "demo value: distinct demo images exceed it 1% of the time; real SSCD uses 0.5 (copy) / 0.75 (~90% precision on DISC)",
        "training_data": "native-models/demo/dataset/clean (1000 Noto Emoji renders, 48x48) and keyed 64x64 versions",
        "licence": "Apache-2.0 (weights trained by the Eidetic recipe on Noto Emoji renders, Apache-2.0)",
        "seed": SEED,
        "recipe": "/usr/bin/python3 native-models/descriptor_demo/train.py --steps %d --batch %d --threads %d" % (args.steps, args.batch, args.threads),
        "self_check": report,
        "files": {"model.onnx": {"sha256": sha256(onnx_path), "bytes": os.path.getsize(onnx_path)}},
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    # a few inputs and PyTorch outputs, for the onnxruntime parity check in verify_onnx.mjs
    probe = torch.stack([augment(im, images, random.Random(7)) for im in images[:4]])
    with torch.no_grad():
        np.save(os.path.join(args.build, "probe_input.npy"), probe.numpy())
        np.save(os.path.join(args.build, "probe_embedding.npy"), model(probe).numpy())
    log(f"exported to {args.out} in {(time.time() - t0) / 60:.1f} min total")


if __name__ == "__main__":
    main()
