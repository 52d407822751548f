"""Reference for mge's `train` and `evaluate` (issue 14): PyTorch's own SGD on a masked ResNet-20.

Writes resnet20-sgd.safetensors.zst beside this script (run with a PyTorch 2.x venv; the mge tests
only read the result, they never need Python):

  init.<name>     state dict at the start, prunable weights already multiplied by their masks
  masks.<name>    U8, 1 = kept, one per conv / linear weight (random, density 0.2; conv1 and linear 0.5)
  losses          F64 [20]: the loss of every SGD step (4 epochs over 5 batches of 128, in order)
  final.<name>    state dict after the 20 steps (running statistics included)
  floor.<name>    F64 [1]: relative l2 between this float32 run and the same run in float64
  losses64        F64 [20]: the float64 run's losses
  sgd.grads, sgd.final, sgd.mask  torch.optim.SGD alone on 6 values for 3 steps (see sgd_steps)
  eval_loss, eval_accuracy  F64 [1]: model.eval() on the first 256 images with the final weights

The images are not stored: both sides compute them (`pixels`): byte k of the 5*128*3*32*32 is the
top byte of splitmix64(k), label i is splitmix64(2^40 + i) mod 10; input = (byte/255 - 0.5)/0.25
in float32.

Training: model.train(); optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
(weight decay on every parameter, as SPEC 5 says), MultiStepLR(milestones=[3], gamma=0.1) stepped
per epoch; masks enforced as the paper's reference does it: weights multiplied by their masks once
before training and again after every optimizer step (so a pruned weight is exactly 0 in every
forward and never regrows).

Why lr 0.01 and batch 128: at lr 0.1 on noise the first steps are chaotic — PyTorch's own float32
and float64 runs of this script differ by > 1e-2 in the loss after 5-7 steps — so no float32
implementation can be held to 2e-3 there. At lr 0.01, batch 128 the two PyTorch runs stay within
about 1e-3 in the loss, but the final weights still differ by up to 6e-3 relative l2 per conv (and
more on batch-norm biases, which barely move from 0): that float32 noise floor is stored per entry
(floor.<name>) and the test holds mge to it; the optimiser's arithmetic itself is checked exactly
on sgd_steps.
"""
import copy
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from torch_reference import ResNet20, write_safetensors  # noqa: E402

torch.manual_seed(0)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def kaiming_resnet20():
    """The reference ResNet-20 with Kaiming-normal conv/linear weights (fan_in, ReLU) and zero biases."""
    model = ResNet20()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def splitmix64(k):
    """splitmix64 of uint64 array k (wrapping arithmetic), as Tests/KernelsTests/TrainingTests.swift computes it."""
    with np.errstate(over="ignore"):
        z = k + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def pixels(batches, batch):
    count = batches * batch * 3 * 32 * 32
    images = (splitmix64(np.arange(count, dtype=np.uint64)) >> np.uint64(56)).astype(np.uint8)
    labels = (splitmix64(np.arange(batches * batch, dtype=np.uint64) + np.uint64(1 << 40)) % np.uint64(10)).astype(np.int64)
    return torch.from_numpy(images.reshape(batches, batch, 3, 32, 32)), torch.from_numpy(labels.reshape(batches, batch))


def train(model, inputs, labels, masks):
    """20 steps: 4 epochs over the 5 batches; returns every step's loss."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[3], gamma=0.1)
    parameters = dict(model.named_parameters())
    losses = []
    model.train()
    for epoch in range(4):
        for b in range(5):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs[b]), labels[b])
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for name, m in masks.items():
                    parameters[name].mul_(m.to(parameters[name].dtype))
            losses.append(loss.item())
        scheduler.step()
    return losses


def sgd_steps():
    """torch.optim.SGD itself on 6 values, 3 steps with given gradients, lr 0.1, momentum 0.9,
    weight decay 0.01, the mask (1, 1, 0, 1, 0, 1) applied after each step: the exact arithmetic
    mge's optimiser must reproduce."""
    p = torch.nn.Parameter(torch.tensor([0.5, -1.25, 0.0, 2.0, 0.0, -0.75]))
    mask = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    grads = torch.tensor([[0.1, -0.2, 0.3, 0.4, -0.5, 0.6], [-0.3, 0.25, 0.1, -0.05, 0.2, 0.15], [0.7, 0.0, -0.4, 0.1, 0.3, -0.2]])
    optimizer = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    for g in grads:
        p.grad = g.clone()
        optimizer.step()
        with torch.no_grad():
            p.mul_(mask)
    return grads.numpy(), p.detach().numpy(), mask.numpy()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    model = kaiming_resnet20()
    generator = torch.Generator().manual_seed(1)
    masks = {}
    for name, p in model.named_parameters():
        if name.endswith("weight") and p.dim() > 1:
            density = 0.5 if name in ("conv1.weight", "linear.weight") else 0.2
            masks[name] = (torch.rand(p.shape, generator=generator) < density).to(torch.uint8)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in masks:
                p.mul_(masks[name].to(p.dtype))
    init = state(model)

    images, labels = pixels(5, 128)
    inputs = (images.float() / 255 - 0.5) / 0.25

    model64 = copy.deepcopy(model).double()
    losses = train(model, inputs, labels, masks)
    final = state(model)
    # The same run in float64: how far float32 rounding alone moves the result (the noise floor
    # of any float32 implementation, mge's included).
    losses64 = train(model64, inputs.double(), labels, masks)
    floors = {k: (torch.linalg.norm(final[k].double() - v.double()) / torch.linalg.norm(v.double())).item()
              for k, v in state(model64).items()}

    model.eval()
    with torch.no_grad():
        logits = model(inputs[:2].reshape(256, 3, 32, 32))
        eval_loss = F.cross_entropy(logits, labels[:2].reshape(256)).item()
        eval_accuracy = (logits.argmax(1) == labels[:2].reshape(256)).float().mean().item()

    tensors = {}
    for k, v in init.items():
        tensors["init." + k] = v.numpy().astype(np.float32)
    for k, m in masks.items():
        tensors["masks." + k] = m.numpy().astype(np.uint8)
    tensors["losses"] = np.array(losses, dtype=np.float64)
    for k, v in final.items():
        tensors["final." + k] = v.numpy().astype(np.float32)
    for k, v in floors.items():
        tensors["floor." + k] = np.array([v], dtype=np.float64)
    tensors["losses64"] = np.array(losses64, dtype=np.float64)
    grads, stepped, mask = sgd_steps()
    tensors["sgd.grads"] = grads.astype(np.float32)
    tensors["sgd.final"] = stepped.astype(np.float32)
    tensors["sgd.mask"] = mask.astype(np.float32)
    tensors["eval_loss"] = np.array([eval_loss], dtype=np.float64)
    tensors["eval_accuracy"] = np.array([eval_accuracy], dtype=np.float64)
    path = os.path.join(here, "resnet20-sgd.safetensors")
    write_safetensors(path, tensors)
    subprocess.run(["zstd", "-19", "-q", "-f", "--rm", path], check=True)
    print("losses", [round(x, 5) for x in losses])
    print("eval", eval_loss, eval_accuracy, "torch", torch.__version__)


if __name__ == "__main__":
    main()
