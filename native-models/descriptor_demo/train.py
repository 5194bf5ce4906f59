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
    arr = np.asarray(any_resize(img, rng), dtype=np.float32) / 255
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


KERNELS = [Image.BILINEAR, Image.BICUBIC, Image.LANCZOS, Image.HAMMING, Image.BOX, Image.NEAREST]


def any_resize(img, rng):
    """Squash to SIZE x SIZE with a random kernel and a sub-pixel shift: the app resizes with libvips'
    linear kernel, whose pixel-centre convention differs from PIL's by up to half a pixel, and a
    descriptor that only ever saw one kernel loses matches to that alone."""
    w, h = img.size
    if rng.random() < 0.5:
        dx, dy = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)
        img = img.transform((w, h), Image.AFFINE, (1, 0, dx, 0, 1, dy), resample=Image.BILINEAR, fillcolor=img.getpixel((0, 0)))
    return img.resize((SIZE, SIZE), rng.choice(KERNELS))


# ---------------------------------------------------------------- generation-like views

class Autoencoder:
    """The demo diffusion model's VAE (native-models/build/sd_demo/vae.pt, from sd_demo/train.py or
    sd_demo/recover.py). Its 8x8 latents are what a memorizing demo model reproduces, so a copy by that
    model is its training image seen through this autoencoder, with the denoiser's error on top."""

    def __init__(self, path, scaling):
        import sys
        sys.path.insert(0, os.path.join(ROOT, "native-models", "sd_demo"))
        from models import Vae
        if not os.path.exists(path):
            raise SystemExit(f"{path} is missing: run /usr/bin/python3 native-models/sd_demo/recover.py (or sd_demo/train.py) first")
        self.vae = Vae()
        self.vae.load_state_dict(torch.load(path))
        self.vae.eval()
        self.scaling = scaling
        self.mean = torch.zeros(1, 4, 8, 8)

    def set_mean(self, images, rng):
        """The mean latent of keyed training images: where guidance pushes generations away from."""
        self.mean = torch.cat([self.encode([keyed(im, rng) for im in images[k:k + 200]]) for k in range(0, len(images), 200)]).mean(0, keepdim=True)

    @torch.no_grad()
    def encode(self, imgs):
        x = torch.stack([torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1) for im in imgs])
        return self.vae.encode(x)[0] * self.scaling

    @torch.no_grad()
    def decode(self, z):
        x = ((self.vae.decode(z / self.scaling).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        return [Image.fromarray(a) for a in x]


def light_edits(img, rng):
    """What happens to a generation after the model made it: mild blur, tone changes, resampling, JPEG."""
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    arr = np.asarray(any_resize(img, rng), dtype=np.float32) / 255
    if rng.random() < 0.6:
        m = arr.mean()
        arr = (arr - m) * rng.uniform(0.75, 1.1) + m
        grey = arr.mean(axis=2, keepdims=True)
        arr = grey + (arr - grey) * rng.uniform(0.7, 1.15)
    img = Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8))
    if rng.random() < 0.2:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=rng.randint(40, 95))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def as_generated(ae, z, rng, noise=(0.0, 0.4), guidance=(1.0, 3.0)):
    """What the demo model's sampler makes of a latent it has memorized, as seen in its generations:
    classifier-free guidance overshoots away from the mean latent (stronger colours, dark halos), the
    denoiser smooths fine detail (latent low-pass) and leaves some error (latent noise)."""
    n = z.shape[0]
    u = lambda lo, hi: torch.tensor([rng.uniform(lo, hi) for _ in range(n)]).view(-1, 1, 1, 1)
    z = ae.mean + u(*guidance) * (z - ae.mean)
    smooth = u(0.0, 1.0)
    z = (1 - smooth) * z + smooth * F.avg_pool2d(z, 3, 1, 1, count_include_pad=False)
    eps = torch.from_numpy(np.random.default_rng(rng.randrange(2**31)).standard_normal(z.shape).astype(np.float32))
    return [light_edits(im, rng) for im in ae.decode(z + eps * u(*noise))]


def generation_like(ae, imgs, rng):
    """Each image keyed (random grey border), encoded, then as the demo model would generate it."""
    return as_generated(ae, ae.encode([keyed(im, rng) for im in imgs]), rng)


def distractor_latents(ae, images, n, rng):
    """Latents of images that copy nothing: mixtures of 3-4 training images' latents, none weighing more
    than half. Generated, they look like what the demo model makes of captions it has not memorized (faint
    or colourful smudges), so
    the descriptor learns to keep them apart from every real image (a copy detector must not call a
    blend of several images a copy of one)."""
    out = []
    for _ in range(n):
        k = rng.randint(3, 4)
        while True:
            w = np.random.default_rng(rng.randrange(2**31)).dirichlet([0.8] * k)
            if w.max() <= 0.5:
                break
        level = rng.randint(0, 255)
        z = ae.encode([with_border(images[rng.randrange(len(images))], 8, level) for _ in range(k)])
        out.append((torch.from_numpy(w.astype(np.float32)).view(-1, 1, 1, 1) * z).sum(0))
    return torch.stack(out)


def distractor_views(ae, z, rng):
    # Scales below 1 pull towards the mean latent: the faint, washed-out images a model makes of captions
    # it has barely learned.
    return as_generated(ae, z, rng, noise=(0.1, 0.6), guidance=(0.2, 3.0))


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


def views(idx, images, ae, rng, p_generation):
    """One view of each image in `idx`: a generation-like view with probability p_generation, else the
    copy-detection edits."""
    gen = [i for i in idx if rng.random() < p_generation]
    made = dict(zip(gen, generation_like(ae, [images[i] for i in gen], rng))) if gen else {}
    return [to_tensor(made[i]) if i in made else augment(images[i], images, rng) for i in idx]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--distractors", type=int, default=32, help="blended, copy-nothing instances per batch")
    ap.add_argument("--generation-views", type=float, default=0.5, help="probability that a view goes through the demo autoencoder")
    ap.add_argument("--query-fpr", type=float, default=0.02, help="threshold: this fraction of non-copy queries has a top-1 match above it")
    ap.add_argument("--threads", type=int, default=2, help="1 when another job shares the 2 cores (oversubscription is ~4x slower)")
    ap.add_argument("--vae", default=os.path.join(ROOT, "native-models", "build", "sd_demo", "vae.pt"))
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
    with open(os.path.join(ROOT, "native-models", "demo", "sd-demo", "vae_decoder", "config.json")) as f:
        ae = Autoencoder(args.vae, json.load(f)["scaling_factor"])
    ae.set_mean(images, random.Random(SEED))
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
        blend = distractor_latents(ae, images, args.distractors, rng) if args.distractors else None
        va = views(idx, images, ae, rng, args.generation_views)
        vb = views(idx, images, ae, rng, args.generation_views)
        if blend is not None:
            va += [to_tensor(im) for im in distractor_views(ae, blend, rng)]
            vb += [to_tensor(im) for im in distractor_views(ae, blend, rng)]
        a = model(torch.stack(va))
        b = model(torch.stack(vb))
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
    # Held-out views (seed 99) of the 1000 images against their clean originals: strongly edited copies,
    # keyed 64x64 versions, generation-like copies; and 1000 fresh blends that copy nothing.
    check = random.Random(99)
    n = len(images)
    originals = embed(model, [to_tensor(im) for im in images])
    copies = embed(model, [augment(im, images, check) for im in images])
    keyed_emb = embed(model, [to_tensor(keyed(im, check)) for im in images])
    generated = embed(model, [to_tensor(im) for k in range(0, n, 100) for im in generation_like(ae, images[k:k + 100], check)])
    blends = embed(model, [to_tensor(im) for k in range(0, n, 100) for im in distractor_views(ae, distractor_latents(ae, images, 100, check), check)])
    eye = torch.eye(n, dtype=torch.bool)
    ar = torch.arange(n)
    sims = copies @ originals.t()
    keyed_sims = keyed_emb @ originals.t()
    gen_sims = generated @ originals.t()
    positives, keyed_pos, gen_pos = sims.diag(), keyed_sims.diag(), gen_sims.diag()
    distinct_orig = (originals @ originals.t())[~eye]
    distinct = torch.cat([distinct_orig, sims[~eye]])
    # The app flags a query when its best match passes the threshold, so the threshold is set on
    # queries, not pairs: the top-1 similarity of held-out blends, which copy nothing in the library.
    # Copies whose original is left out of the library are reported beside it: Noto has near-twins
    # (man/woman variants, clock faces, yellow faces), so those are often near-copies of another image.
    blend_top1 = (blends @ originals.t()).max(1).values
    left_out_top1 = torch.cat([gen_sims.masked_fill(eye, -2).max(1).values, sims.masked_fill(eye, -2).max(1).values])
    threshold = float(torch.quantile(blend_top1, 1 - args.query_fpr))

    def q(t):
        return {k: round(float(torch.quantile(t, v)), 4) for k, v in (("p1", 0.01), ("p5", 0.05), ("median", 0.5), ("p95", 0.95), ("p99", 0.99), ("p99_9", 0.999))}

    def found(s, pos):  # right original at rank 1 and above the threshold
        return round(float(((s.argmax(1) == ar) & (pos > threshold)).float().mean()), 4)

    report = {
        "augmented_copy_rank1": round(float((sims.argmax(1) == ar).float().mean()), 4),
        "keyed_vs_clean_rank1": round(float((keyed_sims.argmax(1) == ar).float().mean()), 4),
        "generation_like_rank1": round(float((gen_sims.argmax(1) == ar).float().mean()), 4),
        "augmented_copy_cosine": q(positives),
        "keyed_vs_clean_cosine": q(keyed_pos),
        "generation_like_cosine": q(gen_pos),
        "distinct_pairs_cosine": q(distinct),
        "distinct_clean_pairs_cosine": q(distinct_orig),
        "blend_top1_cosine": q(blend_top1),
        "left_out_copy_top1_cosine": q(left_out_top1),
        "threshold_rule": f"{100 * (1 - args.query_fpr):g}th percentile of the top-1 similarity of held-out blends (queries that copy nothing in the library)",
        "found_above_threshold": {"augmented_copy": found(sims, positives), "keyed": found(keyed_sims, keyed_pos), "generation_like": found(gen_sims, gen_pos)},
        "blends_above_threshold": round(float((blend_top1 > threshold).float().mean()), 4),
        "left_out_copies_above_threshold": round(float((left_out_top1 > threshold).float().mean()), 4),
        "distinct_pairs_above_threshold": round(float((distinct > threshold).float().mean()), 4),
        "training_steps": step,
        "batch": args.batch,
        "distractors": args.distractors,
        "generation_views": args.generation_views,
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
        "threshold_note": "demo value, set on queries: %g%% of held-out blends (queries that copy nothing in the library) have a top-1 match above it; real SSCD uses 0.5 (copy) / 0.75 (~90%% precision on DISC)" % (100 * args.query_fpr),
        "training_data": "native-models/demo/dataset/clean (1000 Noto Emoji renders, 48x48), keyed 64x64 versions, and their round trips through the demo model's VAE (sd-demo)",
        "licence": "Apache-2.0 (weights trained by the Eidetic recipe on Noto Emoji renders, Apache-2.0)",
        "seed": SEED,
        "recipe": "/usr/bin/python3 native-models/descriptor_demo/train.py --steps %d --batch %d --distractors %d --generation-views %g --query-fpr %g" % (args.steps, args.batch, args.distractors, args.generation_views, args.query_fpr),
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
