"""Rebuilds the training checkpoints (native-models/build/sd_demo/vae.pt and unet.pt) from the committed
ONNX export, so `train.py --extra-unet-minutes N` can continue training on a fresh checkout where the
ignored build folder is gone.

    /usr/bin/python3 native-models/sd_demo/recover.py [--steps 1053]

Parameters keep their names in the export, except those the exporter folded: GroupNorm affine terms
(Mul/Add constants of shape [C,1,1]) and Linear weights (MatMul constants, transposed). Those are found
by exporting the modules with marker values. The result is checked by exporting the recovered modules
again: every initializer must equal the committed one.

`recover(components)` returns the loaded and checked modules without writing anything (used by
tests/python/demo_torch_grad.py, the PyTorch reference for Wen's gradients).
"""
import argparse
import io
import json
import os
import re
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import train  # noqa: E402
from models import TextEncoder, UNet, Vae  # noqa: E402

SD = os.path.join(train.ROOT, "native-models", "demo", "sd-demo")


def initializers(path):
    model = onnx.load(path)
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def export_initializers(fn):
    buf = io.BytesIO()
    fn(buf)
    buf.seek(0)
    return {i.name: numpy_helper.to_array(i) for i in onnx.load_model(buf).graph.initializer}


def load_into(module, committed, export_fn, prefix=""):
    """
    Loads a committed export's initializers into `module`. Folded constants (renamed onnx::Op_N) are
    identified by exporting the module with each unnamed parameter filled with its own marker value:
    the same graph numbers its constants the same way, and the marker says which parameter each one is.
    """
    state = module.state_dict()
    unnamed = [k for k in state if prefix + k not in committed]
    with torch.no_grad():
        for i, key in enumerate(unnamed):
            state[key].fill_(float(i + 1))
    module.load_state_dict(state)
    fresh = export_initializers(export_fn)
    source = {}
    for name, value in fresh.items():
        if not name.startswith("onnx::") or value.size == 0:
            continue
        marks = np.unique(value)
        if len(marks) == 1 and float(marks[0]).is_integer() and 1 <= marks[0] <= len(unnamed):
            source[unnamed[int(marks[0]) - 1]] = name
    for key, tensor in state.items():
        if prefix + key in committed:
            value = committed[prefix + key]
        else:
            if key not in source:
                raise SystemExit(f"{key}: no folded constant carries its marker")
            value = committed[source[key]]
            if value.ndim == 2 and "MatMul" in source[key]:
                value = value.T  # Linear's weight is stored transposed for MatMul (square ones too)
            elif value.shape != tuple(tensor.shape):
                value = value.reshape(tuple(tensor.shape))
        state[key] = torch.from_numpy(np.ascontiguousarray(value)).to(tensor.dtype)
    module.load_state_dict(state)


def check_export(fn, committed):
    """Exports again and compares every initializer with the committed export."""
    fresh = export_initializers(fn)
    ref = initializers(committed)
    worst = 0.0
    for name, value in ref.items():
        if name not in fresh:
            raise SystemExit(f"re-export of {committed} lacks {name}")
        worst = max(worst, float(np.abs(fresh[name].astype(np.float64) - value).max()) if value.size else 0.0)
    return worst


def build_modules():
    """The demo's modules, untrained, in eval mode: (vae, text encoder, unet)."""
    vocab = json.load(open(os.path.join(SD, "tokenizer", "vocab.json")))
    vae, te, unet = Vae(), TextEncoder(len(vocab)), UNet()
    te.eval(), unet.eval(), vae.eval()
    return vae, te, unet


def exporters(vae, te, unet):
    """Per component of the committed export: (module to load, its export function, initializer prefix)."""
    kw = dict(opset_version=17, do_constant_folding=True)
    return {
        "unet": (unet, lambda f: torch.onnx.export(unet, (torch.zeros(2, 4, 8, 8), torch.zeros(2), torch.zeros(2, 77, 128)), f,
                                                   input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                                                   dynamic_axes={"sample": {0: "batch"}, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"}, "out_sample": {0: "batch"}}, **kw), ""),
        "text_encoder": (te, lambda f: torch.onnx.export(te, (torch.zeros(1, 77, dtype=torch.int64),), f, input_names=["input_ids"], output_names=["last_hidden_state"],
                                                         dynamic_axes={"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}}, **kw), ""),
        "vae_decoder": (train.Decoder(vae), lambda f: torch.onnx.export(train.Decoder(vae), (torch.zeros(1, 4, 8, 8),), f, input_names=["latent_sample"], output_names=["sample"], **kw), ""),
        "vae_encoder": (train.EncoderMean(vae), lambda f: torch.onnx.export(train.EncoderMean(vae), (torch.zeros(1, 3, 64, 64),), f, input_names=["sample"], output_names=["latent_sample"], **kw), ""),
    }


def recover(components=("unet", "text_encoder", "vae_decoder", "vae_encoder"), model_dir=SD, log=train.log):
    """
    Loads the committed export's weights into fresh modules and checks them by re-exporting: returns
    (vae, te, unet), the components not asked for left untrained.
    """
    vae, te, unet = build_modules()
    exports = {name: e for name, e in exporters(vae, te, unet).items() if name in components}
    for name, (module, fn, prefix) in exports.items():
        committed = initializers(os.path.join(model_dir, name, "model.onnx"))
        part = module
        if name.startswith("vae"):
            # Each VAE export holds one half (encoder or decoder): load that half only.
            half = "encoder" if name == "vae_encoder" else "decoder"
            part = torch.nn.Module()
            setattr(part, half, getattr(vae, half))
            prefix = "vae."
        load_into(part, committed, fn, prefix)
    for name, (module, fn, prefix) in exports.items():
        d = check_export(fn, os.path.join(model_dir, name, "model.onnx"))
        log(f"{name}: re-exported initializers differ from the committed ones by at most {d:.2e}")
        if d > 1e-6:
            raise SystemExit(f"{name}: recovery is wrong (max difference {d})")
    return vae, te, unet


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1053, help="UNet steps the committed model was trained for")
    args = ap.parse_args()
    vae, te, unet = recover()
    os.makedirs(train.BUILD, exist_ok=True)
    torch.save(vae.state_dict(), os.path.join(train.BUILD, "vae.pt"))
    torch.save({"te": te.state_dict(), "unet": unet.state_dict(), "steps": args.steps}, os.path.join(train.BUILD, "unet.pt"))
    train.log(f"checkpoints written to {train.BUILD} ({args.steps} UNet steps)")


if __name__ == "__main__":
    main()
