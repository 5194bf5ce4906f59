"""Builds the demo CLIP (native-models/demo/clip-demo): a small dual encoder trained contrastively (CLIP's
symmetric InfoNCE with a learned temperature) on the 1000 demo training images and their captions,
exported in the Hugging Face CLIP ONNX layout that optimum writes:

  model.onnx               input_ids, pixel_values, attention_mask -> logits_per_image, logits_per_text,
                           text_embeds, image_embeds (L2-normalised)
  vocab.json, merges.txt   the demo model's CLIP BPE (the same tokenizer as sd-demo)
  preprocessor_config.json CLIPImageProcessor settings (shortest edge S, bicubic, centre crop S, CLIP mean/std)
  manifest.json            kind clip, preprocessing, self-check figures against the untrained model, sha256

    /usr/bin/python3 native-models/clip_demo/train.py [--steps 500] [--batch 250] [--threads 2]

Image views: the clean 48x48 render inside an 8 px border of a random grey (the form the demo diffusion
model was trained on and generates), half of them passed through the demo model's own VAE with latent
noise (generations are VAE decodes), with small shifts, brightness changes, blur and pixel noise. Seeds
fixed; CPU only.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "native-models", "sd_demo"))
from model import DemoClip, export  # noqa: E402
import bpe  # noqa: E402

DATA = os.path.join(ROOT, "native-models", "demo", "dataset")
SD = os.path.join(ROOT, "native-models", "demo", "sd-demo")
OUT = os.path.join(ROOT, "native-models", "demo", "clip-demo")
SIZE = 64
BORDER = 8
SEED = 2468
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)  # CLIP's
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_pairs():
    seen, files, captions = set(), [], []
    with open(os.path.join(DATA, "train.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            if e["file"] in seen:
                continue
            seen.add(e["file"])
            files.append(e["file"])
            captions.append(e["caption"])
    images = np.stack([np.asarray(Image.open(os.path.join(DATA, f)).convert("RGB"), dtype=np.float32) / 255 for f in files])
    return images, captions


def keyed(images, levels):
    out = np.empty((len(images), SIZE, SIZE, 3), dtype=np.float32)
    out[:] = levels[:, None, None, None]
    out[:, BORDER:-BORDER, BORDER:-BORDER] = images
    return out


def load_vae():
    """The demo diffusion model's VAE, rebuilt from its committed export (recover.py's loader)."""
    import recover
    from models import Vae
    import train as sd_train
    vae = Vae().eval()
    half = torch.nn.Module()
    half.encoder = vae.encoder
    kw = dict(opset_version=17, do_constant_folding=True)
    recover.load_into(half, recover.initializers(os.path.join(SD, "vae_encoder", "model.onnx")),
                      lambda f: torch.onnx.export(sd_train.EncoderMean(vae), (torch.zeros(1, 3, 64, 64),), f, input_names=["sample"], output_names=["latent_sample"], **kw), "vae.")
    half = torch.nn.Module()
    half.decoder = vae.decoder
    recover.load_into(half, recover.initializers(os.path.join(SD, "vae_decoder", "model.onnx")),
                      lambda f: torch.onnx.export(sd_train.Decoder(vae), (torch.zeros(1, 4, 8, 8),), f, input_names=["latent_sample"], output_names=["sample"], **kw), "vae.")
    return vae


def round_trips(vae, views, rng):
    """VAE encode -> latent noise (sigma 0-0.4, as generations are imperfect) -> decode, in [0, 1] HWC."""
    out = []
    with torch.no_grad():
        for i in range(0, len(views), 200):
            x = torch.from_numpy(views[i:i + 200]).permute(0, 3, 1, 2) * 2 - 1
            mean, _ = vae.encode(x)
            sigma = torch.from_numpy(rng.uniform(0, 0.4, (len(x), 1, 1, 1)).astype(np.float32))
            z = mean + sigma * torch.from_numpy(rng.standard_normal(mean.shape).astype(np.float32))
            out.append(((vae.decode(z).clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def augment(view, rng, prng):
    dx, dy = rng.integers(-3, 4, 2)
    view = np.roll(view, (int(dy), int(dx)), axis=(0, 1))
    view = view * rng.uniform(0.8, 1.2)
    if prng.random() < 0.3:
        img = Image.fromarray((np.clip(view, 0, 1) * 255 + 0.5).astype(np.uint8)).filter(ImageFilter.GaussianBlur(prng.uniform(0.3, 1.2)))
        view = np.asarray(img, dtype=np.float32) / 255
    if prng.random() < 0.3:
        view = view + rng.normal(0, 0.03, view.shape).astype(np.float32)
    return np.clip(view, 0, 1)


def to_pixels(views):
    return torch.from_numpy(((views - MEAN) / STD).transpose(0, 3, 1, 2).astype(np.float32))


def tokenize(tok, captions):
    """input_ids and attention_mask as Hugging Face's CLIP tokenizer gives them (1 up to the end token)."""
    ids = np.array([tok.encode(c) for c in captions], dtype=np.int64)
    lengths = (ids[:, 1:] == tok.eos).argmax(1) + 2  # the first end token after the start one, included
    mask = (np.arange(77)[None] < lengths[:, None]).astype(np.int64)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def retrieval(model, pixels, ids, mask):
    """Image -> caption top-1 accuracy over all captions, and the mean cosine of matched and of other pairs."""
    model.eval()
    with torch.no_grad():
        t = F.normalize(model.text(ids, mask), dim=-1)
        i = torch.cat([F.normalize(model.vision(pixels[k:k + 250]), dim=-1) for k in range(0, len(pixels), 250)])
    sim = i @ t.t()
    top1 = (sim.argmax(1) == torch.arange(len(sim))).float().mean().item()
    matched = sim.diag().mean().item()
    other = (sim.sum() - sim.diag().sum()).item() / (sim.numel() - len(sim))
    model.train()
    return {"top1": round(top1, 4), "matched_cosine": round(matched, 4), "other_cosine": round(other, 4)}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    prng = random.Random(SEED)
    t0 = time.time()

    images, captions = load_pairs()
    vocab = json.load(open(os.path.join(SD, "tokenizer", "vocab.json")))
    merges = [tuple(l.split()) for l in open(os.path.join(SD, "tokenizer", "merges.txt")).read().splitlines()[1:] if l.strip()]
    tok = bpe.ClipBpe(vocab, merges)
    ids, mask = tokenize(tok, captions)
    n = len(captions)
    log(f"{n} image-caption pairs, vocabulary {len(vocab)}")

    vae = load_vae()
    pools = [keyed(images, rng.integers(0, 256, n) / 255.0) for _ in range(2)]
    pools += [round_trips(vae, keyed(images, rng.integers(0, 256, n) / 255.0), rng) for _ in range(2)]
    # Held-out views for the self-check: fresh border levels and fresh VAE noise, never trained on.
    check_keyed = keyed(images, rng.integers(0, 256, n) / 255.0)
    check_generated = round_trips(vae, keyed(images, rng.integers(0, 256, n) / 255.0), rng)
    log(f"views ready ({time.time() - t0:.0f} s)")

    model = DemoClip(len(vocab))
    untrained = {"keyed": retrieval(model, to_pixels(check_keyed), ids, mask), "vae_round_trip": retrieval(model, to_pixels(check_generated), ids, mask)}
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.steps, pct_start=0.1)
    for step in range(args.steps):
        idx = rng.choice(n, size=min(args.batch, n), replace=False)
        views = np.stack([augment(pools[prng.randrange(len(pools))][k], rng, prng) for k in idx])
        logits_per_image, _, _, _ = model(ids[idx], to_pixels(views), mask[idx])
        target = torch.arange(len(idx))
        loss = (F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_image.t(), target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)  # CLIP caps the scale at 100
        if step % 50 == 0 or step == args.steps - 1:
            log(f"step {step}: loss {loss.item():.3f}, scale {model.logit_scale.exp().item():.1f}")
    trained = {"keyed": retrieval(model, to_pixels(check_keyed), ids, mask), "vae_round_trip": retrieval(model, to_pixels(check_generated), ids, mask)}
    minutes = (time.time() - t0) / 60
    log(f"trained: {trained}; untrained: {untrained}; {minutes:.1f} min")

    os.makedirs(args.out, exist_ok=True)
    model.eval()
    export(model, os.path.join(args.out, "model.onnx"), SIZE)
    for f in ["vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(SD, "tokenizer", f), os.path.join(args.out, f))
    pre = {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": SIZE}, "resample": 3, "do_center_crop": True,
           "crop_size": {"height": SIZE, "width": SIZE}, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
           "image_mean": MEAN.tolist(), "image_std": STD.tolist(), "do_convert_rgb": True}
    with open(os.path.join(args.out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
    files = {f: {"sha256": sha256(os.path.join(args.out, f)), "bytes": os.path.getsize(os.path.join(args.out, f))}
             for f in ["model.onnx", "vocab.json", "merges.txt", "preprocessor_config.json"]}
    manifest = {
        "name": "eidetic-demo-clip",
        "kind": "clip",
        "format": "onnx-clip-hf",
        "architecture": "dual encoder: image CNN (3 strided blocks 32-64-128, mean pool, linear) and text bag-of-tokens (embedding 128, masked mean, MLP) -> 64-d, L2-normalised; learned temperature",
        "dim": 64,
        "preprocessing": {"resize": SIZE, "crop": SIZE, "resample": "bicubic", "mean": MEAN.tolist(), "std": STD.tolist(), "input_range": [0, 1]},
        "training_data": "native-models/demo/dataset: the 1000 demo training images (Noto Emoji renders, keyed with 8 px grey borders, half through the demo VAE) and their captions",
        "licence": "Apache-2.0 (weights trained by the Eidetic recipe on Noto Emoji renders, Apache-2.0)",
        "seed": SEED,
        "recipe": f"/usr/bin/python3 native-models/clip_demo/train.py --steps {args.steps} --batch {args.batch}",
        "self_check": {"image_to_caption_top1_over_1000_captions": trained, "untrained_model": untrained, "chance_top1": 0.001,
                       "held_out_views": "fresh border greys and fresh VAE latent noise, not seen in training", "training_steps": args.steps,
                       "batch": args.batch, "training_minutes": round(minutes, 1)},
        "note": "a demo metric model: it knows only the demo's 1000 captions; real CLIP scores come from an exported CLIP (native-models/exporters)",
        "files": files,
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
