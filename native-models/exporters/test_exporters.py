"""Tests of the SSCD and aesthetic-predictor exporters on randomly initialised models of the real
architectures (no weights can be downloaded here).

    /usr/bin/python3 native-models/exporters/test_exporters.py [--out DIR] [--no-ort]

Builds, for each checkpoint format the exporters accept, a model whose module structure and state-dict
names follow the original code (SSCD's Model with a torchvision ResNet-50 trunk, as a state dict and as
TorchScript; SSCD's Classy Vision ResNeXt-101 32x4d; the aesthetic MLP), exports it, and checks the ONNX
output against the original module's (onnxruntime-node via verify_onnx.mjs, unless --no-ort: the vitest
wrapper tests/integration/native-exporters.test.ts runs onnxruntime itself on the .npy files left in
--out). Plain asserts; prints "N passed, M failed".
"""
import argparse
import os
import sys
import tempfile
import time
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_aesthetic  # noqa: E402
import export_sscd  # noqa: E402

TOL = 1e-4


# ---------------------------------------------------------------- originals (structure as in the public code)

class OrigGeM(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.pooling_param = p

    def forward(self, x):
        n, c, h, w = x.size()
        return x.reshape(n, c, h * w).clamp(min=1e-6).pow(self.pooling_param).mean(dim=2).pow(1.0 / self.pooling_param)


class OrigL2(nn.Module):
    def forward(self, x):
        return F.normalize(x)


class OrigSSCDTorchvision(nn.Module):
    """SSCD Model("TV_RESNET50", 512, 3.0): torchvision resnet50(num_classes=dims), avgpool -> GeM."""

    def __init__(self, dims=512):
        super().__init__()
        self.backbone = torchvision.models.resnet50(num_classes=dims)
        self.backbone.avgpool = OrigGeM(3.0)
        self.embeddings = OrigL2()

    def forward(self, x):
        return self.embeddings(self.backbone(x))


class ClassyBlock(nn.Module):
    def __init__(self, module):
        super().__init__()
        self._module = module

    def forward(self, x):
        return self._module(x)


class ClassyBottleneck(nn.Module):
    """Classy Vision's GenericLayer + BottleneckLayer: convolutional_block, bn, downsample."""

    def __init__(self, cin, cout, stride, mid, groups):
        super().__init__()
        self.convolutional_block = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=groups, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, cout, 1, bias=False))
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        r = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn(self.convolutional_block(x)) + r)


class ClassyResNeXt(nn.Module):
    def __init__(self, num_blocks, width_and_cardinality=None):
        super().__init__()
        self.initial_block = ClassyBlock(nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)))
        out_planes = [64 * 2 ** i * 4 for i in range(4)]
        in_planes = [64] + out_planes[:-1]
        stages = []
        for s, n in enumerate(num_blocks):
            if width_and_cardinality:
                w, c = width_and_cardinality
                mid, groups = w * 2 ** s * c, c
            else:
                mid, groups = out_planes[s] // 4, 1
            stages.append(nn.Sequential(*[ClassyBlock(ClassyBottleneck(in_planes[s] if i == 0 else out_planes[s], out_planes[s],
                                                                        (1 if s == 0 else 2) if i == 0 else 1, mid, groups)) for i in range(n)]))
        self.blocks = nn.Sequential(*stages)

    def forward(self, x):
        return self.blocks(self.initial_block(x))


class OrigSSCDClassy(nn.Module):
    """SSCD Model("CV_RESNEXT101", 1024, 3.0): Classy trunk, embeddings = (GeM, Linear 2048->D, L2)."""

    def __init__(self, num_blocks=(3, 4, 23, 3), width_and_cardinality=(4, 32), dims=1024):
        super().__init__()
        self.backbone = ClassyResNeXt(list(num_blocks), width_and_cardinality)
        self.embeddings = nn.Sequential(OrigGeM(3.0), nn.Linear(2048, dims), OrigL2())

    def forward(self, x):
        return self.embeddings(self.backbone(x))


class OrigAestheticMLP(nn.Module):
    def __init__(self, input_size=768):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(input_size, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                    nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    def forward(self, x):
        return self.layers(x)


def randomise_bn(model, seed):
    """Random-init BN layers are identities; give them non-trivial statistics so the export is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.05)
    return model.eval()


def max_diff(a, b):
    return float((a - b).abs().max())


# ---------------------------------------------------------------- tests

def test_aesthetic(ctx):
    torch.manual_seed(1)
    orig = OrigAestheticMLP().eval()
    ck = os.path.join(ctx.tmp, "sac+logos+ava1-l14-linearMSE.pth")
    torch.save(orig.state_dict(), ck)
    out = os.path.join(ctx.out, "aesthetic")
    m = export_aesthetic.export(ck, out, ort=ctx.ort)
    assert m["kind"] == "aesthetic" and m["inputs"][0]["shape"] == ["batch", 768] and m["outputs"][0]["name"] == "score"
    # the exported module equals the original on normalised embeddings
    x = F.normalize(torch.randn(5, 768), dim=1)
    mod = export_aesthetic.AestheticMLP().eval()
    mod.load_state_dict(export_aesthetic.load_state_dict(ck))
    with torch.no_grad():
        assert max_diff(mod(x), orig(x)) < 1e-6
        assert max_diff(mod(x * 3.0), orig(x)) < 1e-5, "input normalisation inside the graph"
    if ctx.ort:
        assert m["parity"]["onnxruntime_vs_torch_max_abs"] is not None and m["parity"]["onnxruntime_vs_torch_max_abs"] <= TOL, m["parity"]
    assert os.path.exists(os.path.join(out, "parity", "embedding.npy")) and os.path.exists(os.path.join(out, "parity", "score.npy"))


def test_aesthetic_rejects_wrong_checkpoint(ctx):
    ck = os.path.join(ctx.tmp, "wrong.pth")
    torch.save({"layers.0.weight": torch.zeros(1024, 768)}, ck)
    try:
        export_aesthetic.load_state_dict(ck)
    except ValueError as e:
        assert "missing" in str(e)
    else:
        raise AssertionError("a partial state dict must be refused")
    sd = OrigAestheticMLP().state_dict()
    sd["model.layers.0.weight"] = sd.pop("layers.0.weight")  # a "model." prefix is accepted
    torch.save({"state_dict": sd}, ck)
    assert "layers.0.weight" in export_aesthetic.load_state_dict(ck)


def test_sscd_torchvision_key_mapping(ctx):
    orig = OrigSSCDTorchvision()
    mapped, ignored = export_sscd.map_torchvision(export_sscd.strip_prefixes(orig.state_dict()))
    assert export_sscd.detect_layout(orig.state_dict()) == "torchvision"
    assert ignored == [], ignored
    assert export_sscd.infer_arch_dim(mapped) == ("resnet50", 512)
    assert mapped["fc.weight"].shape == (512, 2048)


def test_sscd_torchscript_resnet50_parity(ctx):
    """sscd_disc_mixup as TorchScript: ResNet-50 -> GeM -> 2048->512 -> L2; ONNX vs the TorchScript module."""
    torch.manual_seed(2)
    orig = randomise_bn(OrigSSCDTorchvision(), 3)
    nn.init.xavier_uniform_(orig.backbone.fc.weight)
    ts = torch.jit.trace(orig, torch.randn(1, 3, 64, 64))
    ck = os.path.join(ctx.tmp, "sscd_disc_mixup.torchscript.pt")
    ts.save(ck)
    out = os.path.join(ctx.out, "sscd_resnet50")
    m = export_sscd.export(ck, out, size=ctx.size, threshold=0.75, probe_images=2, ort=ctx.ort)
    assert m["dim"] == 512 and m["preprocessing"]["resize"] == ctx.size and m["preprocessing"]["mode"] == "squash"
    assert m["source"]["layout"] == "torchscript/torchvision", m["source"]
    assert m["parity"]["torchscript_vs_eager_max_abs"] <= TOL, m["parity"]
    if ctx.ort:
        assert m["parity"]["onnxruntime_vs_torch_max_abs"] is not None and m["parity"]["onnxruntime_vs_torch_max_abs"] <= TOL, m["parity"]


def test_sscd_torchvision_state_dict(ctx):
    """The .torchvision.pt state dict loads into the same eager model as the original (no export: covered above)."""
    torch.manual_seed(4)
    orig = randomise_bn(OrigSSCDTorchvision(), 5)
    ck = os.path.join(ctx.tmp, "sscd_disc_mixup.torchvision.pt")
    torch.save(orig.state_dict(), ck)
    mapped, layout, reference, ignored = export_sscd.load_checkpoint(ck)
    assert layout == "state_dict/torchvision" and reference is None
    model, arch, dim = export_sscd.build_model(mapped, arch="resnet50", dim=512)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert max_diff(model(x), orig(x)) <= TOL
    try:
        export_sscd.build_model(mapped, arch="resnext101_32x4d")
    except ValueError as e:
        assert "resnet50" in str(e)
    else:
        raise AssertionError("a wrong --arch must be refused")


def test_sscd_classy_resnext101_parity(ctx):
    """sscd_disc_large as Classy Vision weights: ResNeXt-101 32x4d -> GeM -> 2048->1024 -> L2 (small input)."""
    torch.manual_seed(6)
    orig = randomise_bn(OrigSSCDClassy(), 7)
    sd = orig.state_dict()
    assert export_sscd.detect_layout(sd) == "classy"
    mapped, ignored = export_sscd.map_classy(sd)
    assert ignored == [], ignored[:5]
    assert export_sscd.infer_arch_dim(mapped) == ("resnext101_32x4d", 1024)
    ck = os.path.join(ctx.tmp, "sscd_disc_large.classy.pt")
    torch.save(sd, ck)
    model, _, _ = export_sscd.build_model(mapped)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert max_diff(model(x), orig(x)) <= TOL
    if ctx.full:
        out = os.path.join(ctx.out, "sscd_resnext101")
        m = export_sscd.export(ck, out, size=64, probe_images=2, ort=ctx.ort)
        assert m["dim"] == 1024 and m["source"]["layout"] == "state_dict/classy"
        if ctx.ort:
            assert m["parity"]["onnxruntime_vs_torch_max_abs"] <= TOL, m["parity"]


def test_sscd_classy_resnet50_mapping(ctx):
    """CV_RESNET50 (Classy ResNet-50, 512-d) maps onto torchvision's ResNet-50 names."""
    orig = randomise_bn(OrigSSCDClassy(num_blocks=(3, 4, 6, 3), width_and_cardinality=None, dims=512), 8)
    mapped, ignored = export_sscd.map_classy(orig.state_dict())
    assert ignored == []
    model, arch, dim = export_sscd.build_model(mapped)
    assert (arch, dim) == ("resnet50", 512)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert max_diff(model(x), orig(x)) <= TOL


def test_sscd_rejects_unknown(ctx):
    ck = os.path.join(ctx.tmp, "not_sscd.pt")
    torch.save({"encoder.weight": torch.zeros(3)}, ck)
    try:
        export_sscd.load_checkpoint(ck)
    except ValueError as e:
        assert "unrecognised" in str(e)
    else:
        raise AssertionError("an unrelated state dict must be refused")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "build", "exporters_test"))
    ap.add_argument("--no-ort", action="store_true", help="skip onnxruntime-node parity (the vitest wrapper runs it)")
    ap.add_argument("--size", type=int, default=128, help="ResNet-50 parity input size (real exports use 288 or 320)")
    ap.add_argument("--full", action="store_true", help="also export ResNeXt-101 to ONNX (slow on 2 cores)")
    args = ap.parse_args()
    torch.set_num_threads(2)

    class Ctx:
        pass

    ctx = Ctx()
    ctx.out = os.path.abspath(args.out)
    ctx.ort = not args.no_ort
    ctx.size = args.size
    ctx.full = args.full
    os.makedirs(ctx.out, exist_ok=True)
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        ctx.tmp = tmp
        for name, fn in [(k, v) for k, v in globals().items() if k.startswith("test_") and callable(v)]:
            t = time.time()
            try:
                fn(ctx)
                passed += 1
                print(f"ok   {name} ({time.time() - t:.1f} s)", flush=True)
            except Exception:
                failed += 1
                print(f"FAIL {name}", flush=True)
                traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
