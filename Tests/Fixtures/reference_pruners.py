"""Regenerates the pruner fixtures in this folder with PyTorch (never a project dependency).

It runs SynFlow and ProsPr the way the paper's published code does (SynFlow through
torch.nn.utils.prune: 100 rounds of global L1 pruning of the alive entries, scores
|theta * dR/dtheta| on the linearised eval-mode net; ProsPr: masks as parameters, 3 functional
SGD steps with the first momentum buffer detached, create_graph=True, meta-gradient on the next
batch, keep the ceil(k*N) largest) on the oracle cases' `init` weights, and writes the masks as U8.

    python Tests/Fixtures/reference_pruners.py ../shared/oracle   # needs torch + safetensors

SynFlow runs in float32 exactly like the published code; ProsPr in float64, because its
float32 meta-gradient is dominated by rounding (PyTorch float32 and float64 masks agree on
only 98.67% of the weights on this case), so only float64 is a reproducible reference.
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as tprune
from safetensors.torch import load_file, save_file

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from torch_reference import ResNet20  # noqa: E402


def load(case, dtype):
    net = ResNet20(global_pool=lambda out: F.avg_pool2d(out, out.size(3)))
    net.load_state_dict(load_file(case + "/init.safetensors"), strict=False)
    return net.to(dtype)


def synflow(case, sparsity=0.95, rounds=100):
    net = load(case, torch.float32)
    targets = [(m, n) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
               for n in ("weight", "bias") if getattr(m, n, None) is not None]
    tprune.global_unstructured(targets, pruning_method=tprune.L1Unstructured, amount=0.0)
    per_round = 1 - (1 - sparsity) ** (1 / rounds)
    for _ in range(rounds):
        signs = {}
        with torch.no_grad():
            for name, value in net.state_dict().items():
                signs[name] = torch.sign(value)
                value.abs_()
        net.eval()
        torch.sum(net(torch.ones(1, 3, 32, 32))).backward()
        scores = []
        for m, n in targets:
            original = getattr(m, n + "_orig")
            scores.append((getattr(m, n) * original.grad).detach().abs().flatten())
            original.grad = None
        with torch.no_grad():
            for name, value in net.state_dict().items():
                value.mul_(signs[name])
        net.train()
        alive = torch.cat([getattr(m, n + "_mask").flatten() for m, n in targets])
        container = tprune.PruningContainer()
        container._tensor_name = "all"
        method = tprune.L1Unstructured(amount=per_round)
        method._tensor_name = "all"
        container.add_pruning_method(method)
        mask = container.compute_mask(torch.cat(scores), alive)
        offset = 0
        for m, n in targets:
            p = getattr(m, n)
            tprune.custom_from_mask(m, n, mask[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
    names = {m: name for name, m in net.named_modules()}
    return {names[m] + ".weight": m.weight_mask.to(torch.uint8).contiguous() for m, n in targets if n == "weight"}


def prospr(case, sparsity=0.98, steps=3, lr=0.5, momentum=0.9):
    net = load(case, torch.float64)
    net.train()
    batch = load_file(case + "/batch.safetensors")
    names = [n for n, _ in net.named_parameters()]
    params = dict(net.named_parameters())
    prunable = [n for n in names if n.endswith(".weight") and params[n].dim() > 1]
    masks = {n: torch.ones_like(params[n], requires_grad=True) for n in prunable}
    fast = [params[n] * masks[n] if n in masks else params[n].clone() for n in names]

    def loss(t, at):
        out = torch.func.functional_call(net, dict(zip(names, at)), (batch[f"x{t}"].double(),))
        return F.cross_entropy(out, batch[f"y{t}"])

    buffers = [None] * len(fast)
    for t in range(steps):
        grads = torch.autograd.grad(loss(t, fast), fast, create_graph=True)
        buffers = [g.clone().detach() if b is None else b * momentum + g for b, g in zip(buffers, grads)]
        fast = [p - lr * b for p, b in zip(fast, buffers)]
    meta = torch.autograd.grad(loss(steps, fast), [masks[n] for n in prunable])
    scores = torch.cat([g.abs().flatten() for g in meta])
    keep = torch.zeros_like(scores, dtype=torch.uint8)
    keep[torch.topk(scores, math.ceil((1 - sparsity) * scores.numel())).indices] = 1
    out, offset = {}, 0
    for n in prunable:
        out[n] = keep[offset:offset + params[n].numel()].view_as(params[n]).contiguous()
        offset += params[n].numel()
    return out


if __name__ == "__main__":
    oracle = sys.argv[1] if len(sys.argv) > 1 else "../shared/oracle"
    here = __file__.rsplit("/", 1)[0]
    save_file(synflow(oracle + "/Resnet-20-CIFAR-10-synflow-0.95-s0"), here + "/synflow-resnet20-0.95-reference-code.safetensors")
    save_file(prospr(oracle + "/Resnet-20-CIFAR-10-prospr-0.98-s0"), here + "/prospr-resnet20-0.98-float64.safetensors")
