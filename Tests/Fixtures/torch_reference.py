"""What the fixture scripts beside it share (PyTorch + numpy, never a project dependency): the
reference ResNet-20 with mge's state-dict names, and a minimal safetensors writer independent of
mge's. Imported by reference_pruners.py, training/make_reference.py and torch/make_fixtures.py."""
import json
import struct

import numpy as np
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20 for CIFAR (SPEC). `global_pool` is the final 8x8 average: the fixtures were made
    with F.adaptive_avg_pool2d (training) and F.avg_pool2d (pruners), whose float sums differ in
    the last bit, so each script keeps its own to stay reproducible."""

    def __init__(self, classes=10, global_pool=lambda out: F.adaptive_avg_pool2d(out, 1)):
        super().__init__()
        self.global_pool = global_pool
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            stages.append(nn.Sequential(*[Block(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(3)]))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        out = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
        return self.linear(self.global_pool(out).flatten(1))


SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64",
                      np.dtype(np.uint8): "U8"}


def write_safetensors(path, tensors):
    """Header JSON (padded to 8 bytes) + little-endian data, in the order given."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        array = np.array(array, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
