"""The demo CLIP: a small dual encoder in the Hugging Face CLIP ONNX layout (what optimum exports for
openai/clip-vit-*): one graph with inputs input_ids [Bt, 77], pixel_values [Bi, 3, S, S], attention_mask
[Bt, 77] and outputs logits_per_image, logits_per_text, text_embeds, image_embeds (embeds L2-normalised)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

DIM = 64


class ImageEncoder(nn.Module):
    def __init__(self, dim=DIM):
        super().__init__()
        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.GroupNorm(8, cout), nn.GELU(), nn.Conv2d(cout, cout, 3, 1, 1), nn.GELU())
        self.net = nn.Sequential(block(3, 32), block(32, 64), block(64, 128))  # 64 -> 8
        self.proj = nn.Linear(128, dim)

    def forward(self, pixel_values):
        h = self.net(pixel_values).mean(dim=(2, 3))
        return self.proj(h)


class TextEncoder(nn.Module):
    """Token embeddings averaged over the attention mask, then an MLP."""

    def __init__(self, vocab, width=128, dim=DIM):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, dim))

    def forward(self, input_ids, attention_mask):
        m = attention_mask.to(torch.float32).unsqueeze(-1)
        h = (self.tok(input_ids) * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.mlp(h)


class DemoClip(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.vision = ImageEncoder()
        self.text = TextEncoder(vocab)
        self.logit_scale = nn.Parameter(torch.tensor(2.6593))  # ln(1 / 0.07), as CLIP starts

    def forward(self, input_ids, pixel_values, attention_mask):
        text_embeds = F.normalize(self.text(input_ids, attention_mask), dim=-1)
        image_embeds = F.normalize(self.vision(pixel_values), dim=-1)
        logits_per_text = self.logit_scale.exp() * text_embeds @ image_embeds.t()
        return logits_per_text.t(), logits_per_text, text_embeds, image_embeds


def export(model, path, size):
    model.eval()
    ids = torch.zeros(2, 77, dtype=torch.int64)
    mask = torch.ones(2, 77, dtype=torch.int64)
    torch.onnx.export(model, (ids, torch.zeros(3, 3, size, size), mask), path, opset_version=17, do_constant_folding=True,
                      input_names=["input_ids", "pixel_values", "attention_mask"],
                      output_names=["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"],
                      dynamic_axes={"input_ids": {0: "text_batch"}, "attention_mask": {0: "text_batch"}, "pixel_values": {0: "image_batch"},
                                    "logits_per_image": {0: "image_batch", 1: "text_batch"}, "logits_per_text": {0: "text_batch", 1: "image_batch"},
                                    "text_embeds": {0: "text_batch"}, "image_embeds": {0: "image_batch"}})
