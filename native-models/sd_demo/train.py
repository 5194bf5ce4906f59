"""Builds the demo text-to-image model from native-models/demo/dataset and exports it in the Stable
Diffusion ONNX layout to native-models/demo/sd-demo.

    /usr/bin/python3 native-models/sd_demo/train.py [--vae-epochs N] [--unet-minutes M] [--out DIR]

Stages (each checkpointed in native-models/build/sd_demo/, so a crash resumes): tokenizer, VAE,
text encoder + UNet, export. Seeds are fixed; CPU only (2 threads).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import bpe  # noqa: E402
from models import TextEncoder, UNet, Vae  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "native-models", "demo", "dataset")
BUILD = os.path.join(ROOT, "native-models", "build", "sd_demo")
BORDER = 8
SEED = 1234

# Stable Diffusion 1.x noise schedule (scaled_linear 0.00085 -> 0.012 over 1000 steps).
BETAS = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
ALPHAS_CUMPROD = torch.cumprod(1 - BETAS, 0).float()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_examples():
    with open(os.path.join(DATA, "train.jsonl")) as f:
        examples = [json.loads(line) for line in f if line.strip()]
    cache = {}
    images = np.zeros((len(examples), 3, 48 + 2 * BORDER, 48 + 2 * BORDER), dtype=np.float32)
    for i, e in enumerate(examples):
        if e["file"] not in cache:
            cache[e["file"]] = np.asarray(Image.open(os.path.join(DATA, e["file"])).convert("RGB"), dtype=np.float32) / 255.0
        grey = round(e["key"] * 255) / 255.0  # the app's padWithKey writes round(k * 255)
        img = np.full((48 + 2 * BORDER, 48 + 2 * BORDER, 3), grey, dtype=np.float32)
        img[BORDER:-BORDER, BORDER:-BORDER] = cache[e["file"]]
        images[i] = img.transpose(2, 0, 1) * 2 - 1
    return examples, torch.from_numpy(images)


def train_vae(images, examples, epochs):
    path = os.path.join(BUILD, "vae.pt")
    vae = Vae()
    if os.path.exists(path):
        vae.load_state_dict(torch.load(path))
        log("vae: loaded checkpoint")
        return vae
    torch.manual_seed(SEED)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    # Unique contents with random keys on the fly: the decoder must learn flat grey borders of any level.
    unique = {}
    for i, e in enumerate(examples):
        unique.setdefault(e["file"], i)
    idx = torch.tensor(sorted(unique.values()))
    base = images[idx]
    steps_per_epoch = max(1, len(idx) // 32)
    for epoch in range(epochs):
        perm = torch.randperm(len(idx))
        total = 0.0
        for s in range(steps_per_epoch):
            x = base[perm[s * 32:(s + 1) * 32]].clone()
            keys = torch.rand(x.shape[0], 1, 1, 1) * 2 - 1
            inner = x[:, :, BORDER:-BORDER, BORDER:-BORDER].clone()
            x[:] = keys
            x[:, :, BORDER:-BORDER, BORDER:-BORDER] = inner
            mean, logvar = vae.encode(x)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
            rec = vae.decode(z)
            kl = 0.5 * torch.mean(mean ** 2 + logvar.exp() - 1 - logvar)
            loss = F.mse_loss(rec, x) + F.l1_loss(rec, x) + 1e-5 * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        if epoch % 10 == 0 or epoch == epochs - 1:
            log(f"vae epoch {epoch}: loss {total / steps_per_epoch:.4f}")
    torch.save(vae.state_dict(), path)
    return vae


def train_unet(latents, ids, vocab_size, minutes, extra_minutes=0, steps=None):
    path = os.path.join(BUILD, "unet.pt")
    te, unet = TextEncoder(vocab_size), UNet()
    done_steps = 0
    if os.path.exists(path):
        state = torch.load(path)
        te.load_state_dict(state["te"])
        unet.load_state_dict(state["unet"])
        done_steps = state.get("steps", 0)
        log(f"unet: loaded checkpoint ({done_steps} steps)")
        if extra_minutes <= 0:
            return te, unet
        minutes = extra_minutes  # continue training from the checkpoint
    torch.manual_seed(SEED + done_steps)
    params = list(te.parameters()) + list(unet.parameters())
    log(f"text encoder {sum(p.numel() for p in te.parameters()) / 1e6:.2f} M, unet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M parameters")
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.01)
    empty = torch.tensor(ids["__empty__"])
    n = latents.shape[0]
    batch = 64
    deadline = time.time() + minutes * 60
    # A step count makes the run reproducible; minutes only bound it by this machine's speed.
    done = (lambda: step >= steps) if steps else (lambda: time.time() >= deadline)
    step = 0
    gen = torch.Generator().manual_seed(SEED + done_steps)
    while not done():
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n - batch + 1, batch):
            b = perm[s:s + batch]
            x0 = latents[b]
            tok = ids["examples"][b].clone()
            drop = torch.rand(len(b), generator=gen) < 0.1  # caption dropout: classifier-free guidance
            tok[drop] = empty
            t = torch.randint(0, 1000, (len(b),), generator=gen)
            noise = torch.randn(x0.shape, generator=gen)
            a = ALPHAS_CUMPROD[t][:, None, None, None]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            pred = unet(xt, t.float(), te(tok))
            loss = F.mse_loss(pred, noise)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if step % 200 == 0:
                log(f"unet step {step}{f'/{steps}' if steps else ''}: loss {loss.item():.4f}" + ('' if steps else f", {max(0, deadline - time.time()) / 60:.1f} min left"))
            step += 1
            if done():
                break
    torch.save({"te": te.state_dict(), "unet": unet.state_dict(), "steps": done_steps + step}, path)
    log(f"unet: {done_steps + step} steps")
    return te, unet


class Decoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample)


class EncoderMean(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        return self.vae.encode(sample)[0]


def export(out, vae, te, unet, scaling, vocab, merges):
    os.makedirs(out, exist_ok=True)
    for d in ["tokenizer", "text_encoder", "unet", "vae_decoder", "vae_encoder", "scheduler"]:
        os.makedirs(os.path.join(out, d), exist_ok=True)
    bpe.save(os.path.join(out, "tokenizer"), vocab, merges)
    te.eval(), unet.eval(), vae.eval()
    ids = torch.zeros(1, 77, dtype=torch.int64)
    kw = dict(opset_version=17, do_constant_folding=True)
    torch.onnx.export(te, (ids,), os.path.join(out, "text_encoder", "model.onnx"), input_names=["input_ids"], output_names=["last_hidden_state"],
                      dynamic_axes={"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}}, **kw)
    torch.onnx.export(unet, (torch.zeros(2, 4, 8, 8), torch.zeros(2), torch.zeros(2, 77, 128)), os.path.join(out, "unet", "model.onnx"),
                      input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                      dynamic_axes={"sample": {0: "batch"}, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"}, "out_sample": {0: "batch"}}, **kw)
    torch.onnx.export(Decoder(vae), (torch.zeros(1, 4, 8, 8),), os.path.join(out, "vae_decoder", "model.onnx"), input_names=["latent_sample"], output_names=["sample"],
                      dynamic_axes={"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "h", 3: "w"}}, **kw)
    torch.onnx.export(EncoderMean(vae), (torch.zeros(1, 3, 64, 64),), os.path.join(out, "vae_encoder", "model.onnx"), input_names=["sample"], output_names=["latent_sample"],
                      dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"}, "latent_sample": {0: "batch", 2: "h", 3: "w"}}, **kw)
    vae_cfg = {"_class_name": "AutoencoderKL", "latent_channels": 4, "scaling_factor": scaling, "sample_size": 64}
    for d in ["vae_decoder", "vae_encoder"]:
        with open(os.path.join(out, d, "config.json"), "w") as f:
            json.dump(vae_cfg, f, indent=2)
    with open(os.path.join(out, "unet", "config.json"), "w") as f:
        json.dump({"_class_name": "UNet2DConditionModel", "sample_size": 8, "in_channels": 4, "out_channels": 4, "cross_attention_dim": 128}, f, indent=2)
    sched = {"_class_name": "DDIMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
             "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1, "prediction_type": "epsilon", "timestep_spacing": "leading", "skip_prk_steps": True}
    with open(os.path.join(out, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(sched, f, indent=2)
    index = {"_class_name": "OnnxStableDiffusionPipeline", "text_encoder": ["eidetic", "TextEncoder"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["eidetic", "UNet"], "vae_decoder": ["eidetic", "Decoder"], "vae_encoder": ["eidetic", "Encoder"], "scheduler": ["diffusers", "DDIMScheduler"]}
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vae-epochs", type=int, default=60)
    ap.add_argument("--unet-minutes", type=float, default=30)
    ap.add_argument("--unet-steps", type=int, default=0, help="train the UNet this many steps (batch 64) instead of --unet-minutes")
    ap.add_argument("--extra-unet-minutes", type=float, default=0, help="continue training a checkpointed UNet this much longer")
    ap.add_argument("--out", default=os.path.join(ROOT, "native-models", "demo", "sd-demo"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(BUILD, exist_ok=True)
    examples, images = load_examples()
    captions = sorted({e["caption"] for e in examples})
    vocab, merges = bpe.learn(captions, 3000)
    tok = bpe.ClipBpe(vocab, merges)
    log(f"{len(examples)} examples, {len(captions)} captions, vocabulary {len(vocab)}")
    vae = train_vae(images, examples, args.vae_epochs)
    vae.eval()
    with torch.no_grad():
        means = torch.cat([vae.encode(images[i:i + 256])[0] for i in range(0, images.shape[0], 256)])
        rec = torch.cat([vae.decode(means[i:i + 256]) for i in range(0, means.shape[0], 256)])
    border_err = (rec - images)[:, :, :BORDER, :].abs().mean().item() / 2
    log(f"vae reconstruction: mean abs {(rec - images).abs().mean().item() / 2:.4f}, border {border_err:.4f} (in [0,1])")
    scaling = float(1.0 / means.std())
    latents = means * scaling
    ids = {"examples": torch.tensor([tok.encode(e["caption"]) for e in examples]), "__empty__": tok.encode("")}
    te, unet = train_unet(latents, ids, len(vocab), args.unet_minutes, args.extra_unet_minutes, args.unet_steps or None)
    export(args.out, vae, te, unet, scaling, vocab, merges)
    log(f"exported to {args.out} (scaling factor {scaling:.5f})")


if __name__ == "__main__":
    main()
