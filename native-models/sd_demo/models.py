"""The demo text-to-image model: a small KL autoencoder (64x64x3 <-> 8x8x4), a CLIP-like causal text
encoder and a cross-attention UNet on 8x8x4 latents. Shapes and ONNX interfaces follow Stable Diffusion's,
so the app loads it exactly as it loads a real SD 1.x model."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def groups(ch):
    return 8 if ch % 8 == 0 else 1


class Vae(nn.Module):
    def __init__(self, ch=32, latent=4):
        super().__init__()
        c1, c2, c3 = ch, ch * 2, ch * 2
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c1, 4, stride=2, padding=1), nn.GroupNorm(groups(c1), c1), nn.SiLU(),   # 32
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.GroupNorm(groups(c2), c2), nn.SiLU(),   # 16
            nn.Conv2d(c2, c3, 4, stride=2, padding=1), nn.GroupNorm(groups(c3), c3), nn.SiLU(),   # 8
            nn.Conv2d(c3, c3, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c3, 2 * latent, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent, c3, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c3, c3, 3, padding=1), nn.GroupNorm(groups(c3), c3), nn.SiLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c3, c2, 3, padding=1), nn.GroupNorm(groups(c2), c2), nn.SiLU(),  # 16
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c1, 3, padding=1), nn.GroupNorm(groups(c1), c1), nn.SiLU(),  # 32
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c1, c1, 3, padding=1), nn.SiLU(),  # 64
            nn.Conv2d(c1, 3, 3, padding=1),
        )

    def encode(self, x):
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-20, 10)

    def decode(self, z):
        return self.decoder(z)


class Attention(nn.Module):
    def __init__(self, dim, ctx_dim=None, heads=4):
        super().__init__()
        ctx_dim = ctx_dim or dim
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(ctx_dim, dim, bias=False)
        self.v = nn.Linear(ctx_dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, ctx=None, mask=None):
        ctx = x if ctx is None else ctx
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).reshape(b, n, h, d // h).transpose(1, 2)
        k = self.k(ctx).reshape(b, ctx.shape[1], h, d // h).transpose(1, 2)
        v = self.v(ctx).reshape(b, ctx.shape[1], h, d // h).transpose(1, 2)
        w = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        if mask is not None:
            w = w + mask
        y = w.softmax(-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class TextEncoder(nn.Module):
    def __init__(self, vocab, width=128, layers=2, heads=4, length=77):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.randn(length, width) * 0.01)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(nn.ModuleDict({
                "ln1": nn.LayerNorm(width), "attn": Attention(width, heads=heads),
                "ln2": nn.LayerNorm(width), "mlp": nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)),
            }))
        self.final = nn.LayerNorm(width)
        self.register_buffer("mask", torch.full((length, length), float("-inf")).triu(1))

    def forward(self, ids):
        x = self.tok(ids) + self.pos[: ids.shape[1]]
        mask = self.mask[: ids.shape[1], : ids.shape[1]]
        for blk in self.blocks:
            x = x + blk["attn"](blk["ln1"](x), mask=mask)
            x = x + blk["mlp"](blk["ln2"](x))
        return self.final(x)


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim):
        super().__init__()
        self.n1 = nn.GroupNorm(groups(cin), cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(tdim, cout)
        self.n2 = nn.GroupNorm(groups(cout), cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x)))
        h = h + self.t(F.silu(temb))[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


class SpatialTransformer(nn.Module):
    def __init__(self, ch, ctx_dim, heads=4):
        super().__init__()
        self.norm = nn.GroupNorm(groups(ch), ch)
        self.ln1, self.self_attn = nn.LayerNorm(ch), Attention(ch, heads=heads)
        self.ln2, self.cross_attn = nn.LayerNorm(ch), Attention(ch, ctx_dim, heads=heads)
        self.ln3, self.ff = nn.LayerNorm(ch), nn.Sequential(nn.Linear(ch, 4 * ch), nn.GELU(), nn.Linear(4 * ch, ch))

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        y = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        y = y + self.self_attn(self.ln1(y))
        y = y + self.cross_attn(self.ln2(y), ctx)
        y = y + self.ff(self.ln3(y))
        return x + y.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    def __init__(self, ctx_dim=128, c1=64, c2=128, latent=4):
        super().__init__()
        tdim = 4 * c1
        self.c1 = c1
        self.temb = nn.Sequential(nn.Linear(c1, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.conv_in = nn.Conv2d(latent, c1, 3, padding=1)
        self.down_res, self.down_attn = ResBlock(c1, c1, tdim), SpatialTransformer(c1, ctx_dim)
        self.downsample = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.low_res, self.low_attn = ResBlock(c2, c2, tdim), SpatialTransformer(c2, ctx_dim)
        self.mid_res1, self.mid_attn, self.mid_res2 = ResBlock(c2, c2, tdim), SpatialTransformer(c2, ctx_dim), ResBlock(c2, c2, tdim)
        self.upsample = nn.Conv2d(c2, c1, 3, padding=1)
        self.up_res, self.up_attn = ResBlock(2 * c1, c1, tdim), SpatialTransformer(c1, ctx_dim)
        self.out = nn.Sequential(nn.GroupNorm(groups(c1), c1), nn.SiLU(), nn.Conv2d(c1, latent, 3, padding=1))

    def forward(self, sample, timestep, encoder_hidden_states):
        t = timestep.reshape(-1).expand(sample.shape[0]) if timestep.dim() == 0 or timestep.shape[0] == 1 else timestep
        temb = self.temb(timestep_embedding(t, self.c1))
        ctx = encoder_hidden_states
        x = self.conv_in(sample)
        skip = self.down_attn(self.down_res(x, temb), ctx)
        x = self.downsample(skip)
        x = self.low_attn(self.low_res(x, temb), ctx)
        x = self.mid_res2(self.mid_attn(self.mid_res1(x, temb), ctx), temb)
        x = self.upsample(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        x = self.up_attn(self.up_res(torch.cat([x, skip], dim=1), temb), ctx)
        return self.out(x)
