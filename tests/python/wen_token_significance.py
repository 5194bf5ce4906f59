"""Wen et al.'s token significance by PyTorch autograd, on an SD model folder's ONNX weights.

For each prompt (token ids given), with N noises x_k at timestep t:
  L_k = || eps(x_k, t, E(ids)) - eps(x_k, t, E(ids_empty)) ||^2
significance of token i = mean_k || dL_k / d e_p[i, :] ||_2 (condition: the text encoder's output) and
mean_k || dL_k / d tok[i, :] ||_2 (embedding: the token-embedding rows), the reference for
tests/integration/wen-gradients.test.ts. The graphs run through onnx_torch_grad.run (torch operations on
the ONNX initializers).

    /usr/bin/python3 tests/python/wen_token_significance.py MODEL_DIR IN_DIR OUT.json
IN_DIR: ids.npy [P, 77] (int), empty.npy [1, 77], noises.npy [N, C, h, w], meta.json {"t": 981, "lookup": NAME}
"""
import json
import os
import sys

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(__file__))
from onnx_torch_grad import run  # noqa: E402


def main():
    model_dir, in_dir, out_file = sys.argv[1:4]
    meta = json.load(open(os.path.join(in_dir, "meta.json")))
    text = onnx.load(os.path.join(model_dir, "text_encoder", "model.onnx"))
    unet = onnx.load(os.path.join(model_dir, "unet", "model.onnx"))
    ids_all = np.load(os.path.join(in_dir, "ids.npy"))
    empty = np.load(os.path.join(in_dir, "empty.npy"))
    noises = torch.from_numpy(np.load(os.path.join(in_dir, "noises.npy")))
    n = noises.shape[0]
    id_type = {6: torch.int32, 7: torch.int64}[text.graph.input[0].type.tensor_type.elem_type]
    t_type = {1: torch.float32, 7: torch.int64}[unet.graph.input[1].type.tensor_type.elem_type]
    t = torch.full((n,), meta["t"], dtype=t_type)
    text_out = text.graph.output[0].name
    unet_out = unet.graph.output[0].name
    with torch.no_grad():
        env, _ = run(text, {"input_ids": torch.from_numpy(empty).to(id_type)}, set())
        uncond = env[text_out].repeat(n, 1, 1)
        env, _ = run(unet, {"sample": noises, "timestep": t, "encoder_hidden_states": uncond}, set())
        eu = env[unet_out]
    results = []
    for ids in ids_all:
        ids_t = torch.from_numpy(ids[None]).to(id_type).repeat(n, 1)
        env, leaves = run(text, {"input_ids": ids_t}, {meta["lookup"]})
        cond = env[text_out]
        cond.retain_grad()
        env2, _ = run(unet, {"sample": noises, "timestep": t, "encoder_hidden_states": cond}, set())
        loss = ((env2[unet_out] - eu) ** 2).sum()
        loss.backward()
        length = int(meta["lengths"][len(results)])
        results.append({
            "condition": cond.grad.norm(dim=-1).mean(0)[:length].tolist(),
            "embedding": leaves[meta["lookup"]].grad.norm(dim=-1).mean(0)[:length].tolist(),
        })
    json.dump(results, open(out_file, "w"))


if __name__ == "__main__":
    main()
