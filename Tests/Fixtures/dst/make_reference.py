"""Reference for mge's dynamic sparse training (issue 21): the original SNFS and RigL's rules.

  python make_reference.py /path/to/TimDettmers/sparse_learning

Needs PyTorch 2.x. The sparselearning checkout (github:TimDettmers/sparse_learning) is imported
from the path given, never copied here; it is used as shipped, only made to run on the CPU by
making `Tensor.cuda` return the tensor itself.

Each config (CONFIGS: prefix one = 1 epoch, an update every 5 steps; three = 2 epochs, every 3)
runs both; both start from the masked ResNet-20 of ../training/resnet20-sgd.safetensors.zst (its
init.* weights and masks.*: random masks, density 0.2, conv1 and linear 0.5) and train on its
5 batches of 128 synthetic images (`pixels`) in order, T = 5 · epochs steps, with
torch.optim.SGD(lr 0.01, momentum 0.9, weight_decay 1e-4), constant lr, model.train().

- snfs: sparselearning's Masking(prune_rate 0.5, magnitude prune, momentum growth, momentum
  redistribution, prune_every_k_steps, CosineDecay(0.5, T)), init 'resume' with
  baseline_nonzero = the starting kept count; loop zero_grad / backward / mask.step(). Updates
  after step 5 (one) or steps 3, 6 and 9 (three).
- rigl: RigL's rules (google-research/rigl SparseRigLOptimizer) re-implemented: at 0-based steps
  0 (one) or 0, 3, 6 (three), those <= 0.75 T, the batch's dense gradient moves the masks and no SGD step is taken;
  n_prune = int(float32(n_active) * float32(0.15 (1 + cos(pi t / (0.75 T))))) per layer; drop the
  smallest |w| among active, grow the largest |dense gradient| among the connections not kept after
  the drop (ties to the lower flat index, no noise); new connections start at 0 with zero momentum;
  between updates the gradients are masked.

Each config is also run a second time from initial weights multiplied by (1 + u), u uniform in
±1e-7 (a float32 rounding's worth): <config>.snfs-perturbed.<name> / .rigl-perturbed.<name>. How
far those masks land from the unperturbed ones is how far any float32 implementation can be
expected to land (the choices near the cut follow the rounding, and every differing choice moves
the weights the next update sees). Measured: after three updates over 10 steps PyTorch agrees
with itself perturbed at about 96.8% (SNFS) and 98.7% (RigL), and float32 with float64 at 96.8%
and 98.5%; after one update at 99.99%.

Writes dst-reference.safetensors.zst beside this script: <config>.<method>.<name> (U8 final
masks), <config>.<method>.updates (I64 [1]: the number of mask updates), method = snfs, rigl,
snfs-perturbed, rigl-perturbed.
"""
import math
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(here))
from torch_reference import ResNet20, write_safetensors  # noqa: E402


def _training_fixture_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("training_reference", os.path.join(os.path.dirname(here), "training", "make_reference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pixels = _training_fixture_module().pixels

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

STEPS_PER_EPOCH = 5
# (prefix, epochs, update every): one update each (agreement limited only by float32 near-ties
# at that update), and three updates over 10 steps (float32 differences between any two
# implementations grow with the SGD steps in between and move some choices near the cut).
CONFIGS = [("one", 1, 5), ("three", 2, 3)]
EPOCHS, EVERY = 2, 3
T = STEPS_PER_EPOCH * EPOCHS


def read_training_fixture():
    """init.* and masks.* of ../training/resnet20-sgd.safetensors.zst."""
    import json
    import struct
    raw = subprocess.run(["zstd", "-d", "-c", os.path.join(os.path.dirname(here), "training", "resnet20-sgd.safetensors.zst")],
                         check=True, capture_output=True).stdout
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = {"F32": np.float32, "U8": np.uint8, "F64": np.float64}[info["dtype"]]
        out[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(info["shape"]).copy()
    return out


PERTURB = False


def start():
    fixture = read_training_fixture()
    model = ResNet20()
    state = {k[5:]: torch.from_numpy(v) for k, v in fixture.items() if k.startswith("init.")}
    model.load_state_dict(state, strict=False)
    if PERTURB:
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + (torch.rand(p.shape, generator=generator) - 0.5) * 2e-7)
    masks = {k[6:]: torch.from_numpy(v.astype(np.float32)) for k, v in fixture.items() if k.startswith("masks.")}
    images, labels = pixels(STEPS_PER_EPOCH, 128)
    inputs = (images.float() / 255 - 0.5) / 0.25
    return model, masks, inputs, labels


def batches(inputs, labels):
    for _ in range(EPOCHS):
        for b in range(STEPS_PER_EPOCH):
            yield inputs[b], labels[b]


def snfs(sparselearning_path):
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # the only change: run on the CPU
    sys.path.insert(0, sparselearning_path)
    from sparselearning.core import CosineDecay, Masking
    model, masks, inputs, labels = start()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    kept = sum(int(m.sum().item()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    masking = Masking(optimizer, CosineDecay(0.5, T), prune_rate=0.5, prune_mode="magnitude", growth_mode="momentum",
                      redistribution_mode="momentum", prune_every_k_steps=EVERY)
    masking.add_module(model, density=kept / total, sparse_init="resume")
    masking.baseline_nonzero = kept
    assert set(masking.masks) == set(masks), (sorted(masking.masks), sorted(masks))
    model.train()
    for x, y in batches(inputs, labels):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        masking.step()
    return {k: (v != 0).numpy().astype(np.uint8) for k, v in masking.masks.items()}, masking.steps // EVERY


def rigl():
    model, masks, inputs, labels = start()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    parameters = dict(model.named_parameters())
    end = 0.75 * T
    updates = 0
    model.train()
    for step, (x, y) in enumerate(batches(inputs, labels)):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if step % EVERY == 0 and step <= end:
            fraction = np.float32(0.5 * 0.3 * (1 + math.cos(math.pi * min(step, end) / end)))
            with torch.no_grad():
                for name, mask in masks.items():
                    w = parameters[name].detach().numpy().reshape(-1)
                    g = parameters[name].grad.detach().numpy().reshape(-1)
                    old = mask.numpy().reshape(-1)
                    active = np.nonzero(old)[0]
                    n_prune = int(np.float32(len(active)) * fraction)
                    if n_prune == 0:
                        continue
                    order = active[np.lexsort((active, -np.abs(w[active])))]  # |w| descending, index ascending
                    new = np.zeros_like(old)
                    new[order[:len(active) - n_prune]] = 1
                    candidates = np.nonzero(new == 0)[0]
                    grow = candidates[np.lexsort((candidates, -np.abs(g[candidates])))][:n_prune]
                    new[grow] = 1
                    fresh = (new == 1) & (old == 0)
                    keep = torch.from_numpy(((new == 1) & ~fresh).astype(np.float32)).reshape(mask.shape)
                    parameters[name].mul_(keep)
                    buffer = optimizer.state.get(parameters[name], {}).get("momentum_buffer")
                    if buffer is not None:
                        buffer.mul_(keep)
                    masks[name] = torch.from_numpy(new).reshape(mask.shape)
            updates += 1
            continue
        for name, mask in masks.items():
            parameters[name].grad.mul_(mask)
        optimizer.step()
        with torch.no_grad():
            for name, mask in masks.items():
                parameters[name].mul_(mask)
    return {k: (v != 0).numpy().astype(np.uint8) for k, v in masks.items()}, updates


def main():
    global EPOCHS, EVERY, T, PERTURB
    if len(sys.argv) != 2:
        sys.exit("usage: make_reference.py /path/to/sparse_learning")
    tensors = {}
    for prefix, epochs, every in CONFIGS:
        EPOCHS, EVERY, T = epochs, every, STEPS_PER_EPOCH * epochs
        for suffix, perturb in (("", False), ("-perturbed", True)):
            PERTURB = perturb
            for method, (masks, updates) in (("snfs", snfs(sys.argv[1])), ("rigl", rigl())):
                for k, v in masks.items():
                    tensors[prefix + "." + method + suffix + "." + k] = v
                tensors[prefix + "." + method + suffix + ".updates"] = np.array([updates], dtype=np.int64)
        PERTURB = False
    path = os.path.join(here, "dst-reference.safetensors")
    write_safetensors(path, tensors)
    subprocess.run(["zstd", "-19", "-q", "-f", "--rm", path], check=True)
    print("torch", torch.__version__)


if __name__ == "__main__":
    main()
