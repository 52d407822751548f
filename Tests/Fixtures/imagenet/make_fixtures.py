#!/usr/bin/env python3
"""Writes the fixtures of Tests/KernelsTests/ImageNetModelTests.swift (#23: ImageNet models).

Run from the repository root with a Python that has torch, torchvision (its model code only) and
Pillow — test-only tools, never a dependency of mge:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install torch torchvision pillow numpy
    /tmp/v/bin/python Tests/Fixtures/imagenet/make_fixtures.py

(Written with torch 2.13.0+cpu, torchvision 0.28.0, Pillow 13.0.0. PyPI's torchvision wheel may be
built against another torch flavour than the local one: its C++ operators then fail to register,
which the models do not need, so the script skips `torchvision._meta_registrations`.)

Files (zstd -19 where large):
  pooling.safetensors        torch.nn.functional.max_pool2d / avg_pool2d forward and backward
                             (x, upstream gradient g, y, dx) for several window/stride/padding cases
  bottleneck.pt.zst          state dict (torch.save, zip) of a reduced torchvision ResNet: torchvision's
                             own Bottleneck blocks and module names, blocks [1, 1, 1, 1], widths 8/16/32/64
                             (×4 out), stem 7x7/2 + maxpool 3x3/2 pad 1, 10 classes, on 3x32x32; random
                             BN affine and running statistics
  bottleneck.reference.safetensors   input x [2, 3, 32, 32], labels, eval-mode logits, train-mode
                             loss and the gradients of conv1.weight, layer1.0.conv1.weight,
                             layer1.0.downsample.0.weight and fc.weight
  folder/{train,val}/<wnid>/*.JPEG   a tiny ILSVRC-layout folder (PIL-written JPEGs of several sizes,
                             one grayscale)
  manifest.json              versions, parameter counts, torchvision resnet50's state-dict names and
                             shapes in order (num_batches_tracked left out)
  transform.safetensors.zst  per JPEG (sorted as ImageFolder sorts them), PIL decode + convert("RGB")
                             + torchvision Resize(256) + CenterCrop(224) as uint8 [3, 224, 224]
"""
import json, os, struct, subprocess, sys, types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
import torchvision  # noqa: E402
from torchvision.models.resnet import Bottleneck, ResNet, conv1x1  # noqa: E402
from torchvision import transforms  # noqa: E402
from PIL import Image  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from torch_reference import write_safetensors  # noqa: E402


def zstd(path):
    subprocess.run(["zstd", "-19", "-q", "-f", "--rm", path], check=True)


def pooling():
    torch.manual_seed(0)
    out = {}
    cases = [("max_3_2_1", "max", 3, 2, 1), ("max_3_1_1", "max", 3, 1, 1), ("max_2_2_0", "max", 2, 2, 0),
             ("max_3_3_1", "max", 3, 3, 1), ("avg_3_2_1", "avg", 3, 2, 1)]
    for name, kind, k, s, p in cases:
        x = torch.randn(2, 3, 9, 10, dtype=torch.float64, requires_grad=True)
        y = F.max_pool2d(x, k, s, p) if kind == "max" else F.avg_pool2d(x, k, s, p)  # count_include_pad=True
        g = torch.randn_like(y)
        (dx,) = torch.autograd.grad(y, x, g)
        out[name + ".x"] = x.detach().numpy()
        out[name + ".g"] = g.numpy()
        out[name + ".y"] = y.detach().numpy()
        out[name + ".dx"] = dx.numpy()
    write_safetensors(os.path.join(HERE, "pooling.safetensors"), out)


class SmallBottleneckResNet(ResNet):
    """torchvision's ResNet with widths 8/16/32/64 (its __init__ fixes 64…512): the same
    modules (conv1, bn1, relu, maxpool, layerN.i.{conv,bn}{1,2,3}, downsample.0/1, avgpool, fc)."""

    def __init__(self, width=8, layers=(1, 1, 1, 1), num_classes=10):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(Bottleneck, width, layers[0])
        self.layer2 = self._make_layer(Bottleneck, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(Bottleneck, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(Bottleneck, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * Bottleneck.expansion, num_classes)


def bottleneck():
    torch.manual_seed(1)
    model = SmallBottleneckResNet().double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    path = os.path.join(HERE, "bottleneck.pt")
    torch.save(state, path)
    zstd(path)
    # The reference runs in float64 on the float32-rounded weights mge loads.
    model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state.items()})
    x = torch.randn(2, 3, 32, 32).double()  # float32 values: mge's batches are float32
    labels = torch.tensor([3, 7])
    model.eval()
    logits = model(x).detach()
    model.train()
    loss = F.cross_entropy(model(x), labels)
    names = ["conv1.weight", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight", "fc.weight"]
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    out = {"x": x.numpy(), "labels": labels.numpy().astype(np.int64), "logits": logits.numpy(),
           "loss": np.array([loss.item()])}
    for n, g in zip(names, grads):
        out["grad." + n] = g.numpy()
    write_safetensors(os.path.join(HERE, "bottleneck.reference.safetensors"), out)
    return sum(p.numel() for p in model.parameters())


def image(width, height, seed, gray=False):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    channels = []
    for c in range(3):
        fx, fy, phase = rng.uniform(0.01, 0.08), rng.uniform(0.01, 0.08), rng.uniform(0, 6.3)
        v = 127 + 90 * np.sin(fx * xx + phase) * np.cos(fy * yy) + 30 * ((xx // 17 + yy // 23) % 2)
        channels.append(v + rng.normal(0, 6, v.shape))
    rgb = np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)
    return Image.fromarray(rgb[..., 0] if gray else rgb, "L" if gray else "RGB")


def folder():
    # (split, wnid, file, width, height, grayscale): landscape, portrait, upscaled, exact 256
    # short side, odd crop offsets (half-to-even rounding), grayscale.
    files = [("train", "n01440764", "a.JPEG", 400, 300, False), ("train", "n01440764", "b.JPEG", 301, 457, False),
             ("train", "n02102040", "c.JPEG", 180, 200, False), ("train", "n02102040", "d.JPEG", 256, 341, True),
             ("val", "n01440764", "e.JPEG", 375, 500, False), ("val", "n02102040", "f.JPEG", 333, 256, False)]
    transform = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    expected = {}
    for i, (split, wnid, name, w, h, gray) in enumerate(files):
        directory = os.path.join(HERE, "folder", split, wnid)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, name)
        image(w, h, i, gray).save(path, quality=90)
        with Image.open(path) as f:
            rgb = f.convert("RGB")
        crop = np.asarray(transform(rgb), dtype=np.uint8).transpose(2, 0, 1)
        expected[f"{split}/{wnid}/{name}"] = np.ascontiguousarray(crop)
    path = os.path.join(HERE, "transform.safetensors")
    write_safetensors(path, expected)
    zstd(path)


if __name__ == "__main__":
    pooling()
    count = bottleneck()
    folder()
    resnet50 = torchvision.models.resnet50()
    full = sum(p.numel() for p in resnet50.parameters())
    vgg = sum(p.numel() for p in torchvision.models.vgg16().parameters())
    keys = [[k, list(v.shape)] for k, v in resnet50.state_dict().items() if not k.endswith("num_batches_tracked")]
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump({"torch": torch.__version__, "torchvision": torchvision.__version__,
                   "pillow": Image.__version__ if hasattr(Image, "__version__") else __import__("PIL").__version__,
                   "bottleneck_parameters": count, "resnet50_parameters": full, "vgg16_parameters": vgg,
                   "resnet50_state_dict": keys}, f)
