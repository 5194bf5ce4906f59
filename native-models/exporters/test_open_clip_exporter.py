"""Test of export_open_clip.py without open_clip (not installable here): a randomly initialised model with
open_clip's CLIP structure (token + positional embeddings, causal pre-LN transformer, ln_final, pooling at
the end token by argmax of the ids, text_projection; a ViT with class token, ln_pre, ln_post, proj;
logit_scale), small sizes, and a BPE file in open_clip's format made from the demo model's merges.

    /usr/bin/python3 native-models/exporters/test_open_clip_exporter.py --out DIR [--no-ort]

Leaves DIR/clip (the exported folder, with parity .npy files) for tests/integration/open-clip-exporter.test.ts.
"""
import argparse
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "native-models", "sd_demo"))
import export_open_clip  # noqa: E402
import bpe  # noqa: E402


class Block(nn.Module):
    """open_clip's ResidualAttentionBlock: pre-LN attention and MLP (GELU)."""

    def __init__(self, width, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x, attn_mask=None):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class TinyOpenClip(nn.Module):
    def __init__(self, vocab, width=32, heads=4, layers=2, embed=16, image=32, patch=8, context=77):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.randn(context, width) * 0.1)
        self.text_blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, embed) * width ** -0.5)
        self.register_buffer("attn_mask", torch.full((context, context), float("-inf")).triu(1))
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * 0.1)
        self.vis_positional_embedding = nn.Parameter(torch.randn((image // patch) ** 2 + 1, width) * 0.1)
        self.ln_pre = nn.LayerNorm(width)
        self.vis_blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, embed) * width ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(2.6593))

    def encode_text(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        for b in self.text_blocks:
            x = b(x, self.attn_mask)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    def encode_image(self, image):
        x = self.conv1(image).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + self.vis_positional_embedding
        x = self.ln_pre(x)
        for b in self.vis_blocks:
            x = b(x)
        return self.ln_post(x[:, 0]) @ self.proj


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-ort", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    # A BPE file in open_clip's format (gzip, "#version" line, one merge per line) from the demo's merges.
    merges = open(os.path.join(ROOT, "native-models", "demo", "sd-demo", "tokenizer", "merges.txt"), encoding="utf-8").read().splitlines()[1:]
    bpe_path = os.path.join(args.out, "bpe_test.txt.gz")
    with gzip.open(bpe_path, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(m for m in merges if m.strip()) + "\n")
    out = os.path.join(args.out, "clip")
    vocab_size = 256 * 2 + len([m for m in merges if m.strip()]) + 2
    model = TinyOpenClip(vocab_size)

    def tokenize(texts):
        import json
        vocab = json.load(open(os.path.join(out, "vocab.json"), encoding="utf-8"))
        pairs = [tuple(l.split()) for l in open(os.path.join(out, "merges.txt"), encoding="utf-8").read().splitlines()[1:] if l.strip()]
        tok = bpe.ClipBpe(vocab, pairs)
        ids = []
        for t in texts:
            row = [i for i in tok.encode(t)]
            end = row.index(tok.eos, 1)
            ids.append(row[:end + 1] + [0] * (77 - end - 1))  # open_clip pads with 0
        return torch.tensor(ids, dtype=torch.int64)

    m = export_open_clip.export(model, out, 32, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711), tokenize,
                                "tiny open_clip-structured CLIP (random weights)", {"test": True}, ort=not args.no_ort, bpe_path=bpe_path)
    assert m["kind"] == "clip" and m["dim"] == 16 and m["vocab_size"] == vocab_size, m
    demo_vocab = __import__("json").load(open(os.path.join(ROOT, "native-models", "demo", "sd-demo", "tokenizer", "vocab.json"), encoding="utf-8"))
    written = __import__("json").load(open(os.path.join(out, "vocab.json"), encoding="utf-8"))
    assert written == demo_vocab, "the converted vocabulary differs from CLIPTokenizer's for the same merges"
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
