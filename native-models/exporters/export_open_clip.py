"""Exports an open_clip checkpoint (MemBench scored CLIP with open_clip ViT-g-14, laion2b_s34b_b88k) to the
CLIP folder layout Eidetic reads, the one Hugging Face optimum writes for CLIP:

  <out>/model.onnx               inputs input_ids [Bt, 77] int64, pixel_values [Bi, 3, S, S] float32
                                 -> logits_per_image, logits_per_text, text_embeds, image_embeds (L2-normalised)
                                 (attention_mask is not an input: open_clip's causal text tower pools at the
                                 end token and never looks at padding); weights over 2 GB go to external data
  <out>/vocab.json, merges.txt   open_clip's BPE (bpe_simple_vocab_16e6.txt.gz) in CLIPTokenizer's files
  <out>/tokenizer_config.json    pad token "!" (id 0), as open_clip pads
  <out>/preprocessor_config.json CLIPImageProcessor settings from the model's preprocess config
  <out>/manifest.json            kind clip, preprocessing, dim, parity against PyTorch, sha256 of model.onnx

    pip install open_clip_torch        # where it can be installed; needs network for --pretrained
    /usr/bin/python3 native-models/exporters/export_open_clip.py --model ViT-g-14 --pretrained laion2b_s34b_b88k --out models/clip-vit-g-14

The ONNX graph is checked against the PyTorch model in onnxruntime-node (verify_onnx.mjs) on random images
and real prompts: the export fails above --tol (default 1e-4).
"""
import argparse
import gzip
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from export_aesthetic import run_node_parity, sha256  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "sd_demo"))
from bpe import bytes_to_unicode  # noqa: E402

BICUBIC = 3  # PIL's resample code, as CLIPImageProcessor records it


class ClipOnnx(nn.Module):
    """Any model with open_clip's encode_text / encode_image / logit_scale, in optimum's CLIP interface."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, pixel_values):
        text_embeds = F.normalize(self.model.encode_text(input_ids), dim=-1)
        image_embeds = F.normalize(self.model.encode_image(pixel_values), dim=-1)
        logits_per_text = self.model.logit_scale.exp() * text_embeds @ image_embeds.t()
        return logits_per_text.t(), logits_per_text, text_embeds, image_embeds


def write_tokenizer(out, bpe_path, context_length=77):
    """open_clip's SimpleTokenizer vocabulary as CLIPTokenizer's vocab.json + merges.txt (the same ids)."""
    with gzip.open(bpe_path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1] if m.strip()]
    # The 256 byte symbols in CLIP's order (bs order, not byte order): the first 256 vocabulary ids.
    base = list(bytes_to_unicode().values())
    vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>"}
    with open(os.path.join(out, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({**special, "do_lower_case": True, "model_max_length": context_length, "tokenizer_class": "CLIPTokenizer"}, f, indent=2)
    return len(vocab)


def export(model, out, image_size, mean, std, tokenize, name, source, tol=1e-4, ort=True, seed=0, bpe_path=None):
    """Exports `model` (open_clip-like) with its tokenizer files; `tokenize(list of str) -> LongTensor [n, 77]`."""
    t0 = time.time()
    os.makedirs(out, exist_ok=True)
    model = model.eval()
    wrapper = ClipOnnx(model).eval()
    vocab_size = write_tokenizer(out, bpe_path) if bpe_path else None
    g = torch.Generator().manual_seed(seed)
    prompts = ["a photo of a cat", "raising hands", "an aerial tramway over the sea"]
    ids = tokenize(prompts)
    pixels = torch.randn(2, 3, image_size, image_size, generator=g)
    with torch.no_grad():
        want = wrapper(ids, pixels)
    onnx_path = os.path.join(out, "model.onnx")
    torch.onnx.export(wrapper, (ids, pixels), onnx_path, opset_version=17, do_constant_folding=True,
                      input_names=["input_ids", "pixel_values"],
                      output_names=["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"],
                      dynamic_axes={"input_ids": {0: "text_batch"}, "pixel_values": {0: "image_batch"},
                                    "logits_per_image": {0: "image_batch", 1: "text_batch"}, "logits_per_text": {0: "text_batch", 1: "image_batch"},
                                    "text_embeds": {0: "text_batch"}, "image_embeds": {0: "image_batch"}})
    parity_dir = os.path.join(out, "parity")
    os.makedirs(parity_dir, exist_ok=True)
    np.save(os.path.join(parity_dir, "input_ids.npy"), ids.numpy().astype(np.int64))
    np.save(os.path.join(parity_dir, "pixel_values.npy"), pixels.numpy())
    for i, n in enumerate(["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"]):
        np.save(os.path.join(parity_dir, f"{n}.npy"), np.ascontiguousarray(want[i].numpy()))
    ort_diff, ort_msg = (None, "not run")
    if ort:
        ort_diff, ort_msg = run_node_parity(onnx_path, os.path.join(parity_dir, "logits_per_image.npy"),
                                            {"input_ids": os.path.join(parity_dir, "input_ids.npy"), "pixel_values": os.path.join(parity_dir, "pixel_values.npy")}, tol)
        if ort_diff is None:
            raise ValueError(f"the onnxruntime parity check could not run ({ort_msg}); --no-ort skips it")
        if ort_diff > tol:
            raise ValueError(f"ONNX output differs from PyTorch by {ort_diff:.2e} (> {tol})")
    pre = {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": image_size}, "resample": BICUBIC, "do_center_crop": True,
           "crop_size": {"height": image_size, "width": image_size}, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
           "image_mean": list(mean), "image_std": list(std), "do_convert_rgb": True}
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
    manifest = {
        "name": name,
        "kind": "clip",
        "format": "onnx-clip-hf",
        "dim": int(want[2].shape[1]),
        "preprocessing": {"resize": image_size, "crop": image_size, "resample": "bicubic", "mean": list(mean), "std": list(std), "input_range": [0, 1]},
        "vocab_size": vocab_size,
        "source": source,
        "parity": {"probe": f"3 prompts, 2 N(0,1) images, seed {seed}", "tolerance": tol, "onnxruntime_vs_torch_max_abs": ort_diff, "onnxruntime": ort_msg},
        "files": {"model.onnx": {"sha256": sha256(onnx_path), "bytes": os.path.getsize(onnx_path)}},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"exported {name} to {out} in {time.time() - t0:.1f} s; onnxruntime max abs diff {ort_diff}", flush=True)
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ViT-g-14")
    ap.add_argument("--pretrained", default="laion2b_s34b_b88k", help="an open_clip pretrained tag or a checkpoint file")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--no-ort", action="store_true")
    args = ap.parse_args()
    try:
        import open_clip  # noqa: PLC0415
        from open_clip import tokenizer as oc_tokenizer  # noqa: PLC0415
    except ImportError:
        print("export_open_clip: open_clip is not installed here (pip install open_clip_torch)", file=sys.stderr)
        sys.exit(1)
    torch.set_num_threads(2)
    model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=args.pretrained)
    cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    mean = cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))
    std = cfg.get("std", (0.26862954, 0.26130258, 0.27577711))
    tok = open_clip.get_tokenizer(args.model)
    bpe = oc_tokenizer.default_bpe()
    source = {"open_clip_model": args.model, "pretrained": args.pretrained, "open_clip_version": getattr(open_clip, "__version__", "?")}
    if os.path.exists(args.pretrained):
        source["checkpoint_sha256"] = sha256(args.pretrained)
    try:
        export(model, args.out, size, mean, std, lambda texts: tok(texts), f"open_clip {args.model} ({args.pretrained})", source, args.tol, not args.no_ort, bpe_path=bpe)
    except ValueError as e:
        print(f"export_open_clip: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
