"""PyTorch CPU reference for scripts/bench-prune (optional; run with a Python that has torch).

The scoring work of each gradient pruner on ResNet-20 at sparsity 0.98 with random CIFAR-shaped
data, written the way the reference computes it: snip (one batch of 128, |dL/dm|), synflow
(100 rounds of |theta * dR/dtheta| on the |.| network, eval BN, all-ones input, masks
re-applied each round), grasp (25 per class, two halves, T = 200, Hg by double backward) and
prospr (3 unrolled SGD steps on batches of 128 with create_graph, meta-gradient w.r.t. masks).
Median over runs of the whole pruner (scores plus global selection).
"""
import importlib.util, math, os, resource, statistics, sys, time
import torch, torch.nn.functional as F

spec = importlib.util.spec_from_file_location("bench_nn_torch_models", os.path.join(os.path.dirname(__file__), "bench-nn-torch.py"))
source = open(spec.origin).read().split("runs = int(")[0]  # the model definitions only
namespace = {}
exec(compile(source, spec.origin, "exec"), namespace)
ResNet20 = namespace["ResNet20"]

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
torch.manual_seed(0)
S = 0.98

def weights(m): return [p for p in m.parameters() if p.dim() > 1]

def snip():
    m = ResNet20().train(); x = torch.randn(128, 3, 32, 32); y = torch.randint(0, 10, (128,))
    W = weights(m); masks = [torch.ones_like(w, requires_grad=True) for w in W]
    names = [n for n, p in m.named_parameters()]; params = dict(m.named_parameters())
    mapping = {}
    it = iter(masks)
    for n in names:
        mapping[n] = params[n].detach() * next(it) if params[n].dim() > 1 else params[n]
    out = torch.func.functional_call(m, mapping, (x,))
    g = torch.autograd.grad(F.cross_entropy(out, y), masks)
    flat = torch.cat([t.abs().flatten() for t in g]); flat = flat / flat.sum()
    torch.topk(flat, int(flat.numel() * (1 - S)))

def synflow():
    m = ResNet20().eval()
    with torch.no_grad():
        for p in m.state_dict().values():
            if p.dtype.is_floating_point: p.abs_()
    W = weights(m); orig = [w.detach().clone() for w in W]; masks = [torch.ones_like(w) for w in W]
    a_total = sum(w.numel() for w in W)
    for r in range(100):
        with torch.no_grad():
            for w, o, mk in zip(W, orig, masks): w.copy_(o * mk)
        m.zero_grad()
        m(torch.ones(1, 3, 32, 32)).sum().backward()
        flat = torch.cat([(w.grad * w).abs().flatten() for w in W]); alive = torch.cat([mk.flatten() for mk in masks]).bool()
        k = round((1 - (1 - S) ** (1 / 100)) * alive.sum().item())
        flat[~alive] = float('inf'); idx = torch.topk(flat, k, largest=False).indices
        newalive = alive.clone(); newalive[idx] = False; off = 0
        for i, w in enumerate(W):
            masks[i] = newalive[off:off + w.numel()].view_as(w).float(); off += w.numel()

def grasp():
    m = ResNet20().train(); x = torch.randn(250, 3, 32, 32); y = torch.arange(10).repeat_interleave(25)
    W = weights(m); halves = [(x[:125], y[:125]), (x[125:], y[125:])]; g = None
    for xi, yi in halves:
        gp = torch.autograd.grad(F.cross_entropy(m(xi) / 200, yi), W)
        g = list(gp) if g is None else [a + b for a, b in zip(g, gp)]
    hg = [torch.zeros_like(w) for w in W]
    for xi, yi in halves:
        gf = torch.autograd.grad(F.cross_entropy(m(xi) / 200, yi), W, create_graph=True)
        z = sum((a * b).sum() for a, b in zip(g, gf))
        hg = [a + b for a, b in zip(hg, torch.autograd.grad(z, W))]
    flat = torch.cat([(-w.detach() * h).flatten() for w, h in zip(W, hg)])
    torch.topk(flat / (flat.sum().abs() + 1e-10), int(flat.numel() * S))

def prospr(batch=128):
    m = ResNet20().train(); names = [n for n, _ in m.named_parameters()]; params = dict(m.named_parameters())
    masks = {n: torch.ones_like(p, requires_grad=True) for n, p in params.items() if p.dim() > 1}
    fast = [params[n].detach() * masks[n] if n in masks else params[n].detach().clone().requires_grad_(True) for n in names]
    buf = None
    for t in range(3):
        x = torch.randn(batch, 3, 32, 32); y = torch.randint(0, 10, (batch,))
        g = torch.autograd.grad(F.cross_entropy(torch.func.functional_call(m, dict(zip(names, fast)), (x,)), y), fast, create_graph=True)
        buf = [gi.detach().clone() for gi in g] if buf is None else [0.9 * b + gi for b, gi in zip(buf, g)]
        fast = [f - 0.5 * b for f, b in zip(fast, buf)]
    x = torch.randn(batch, 3, 32, 32); y = torch.randint(0, 10, (batch,))
    mg = torch.autograd.grad(F.cross_entropy(torch.func.functional_call(m, dict(zip(names, fast)), (x,)), y), list(masks.values()))
    flat = torch.cat([t.abs().flatten() for t in mg]); torch.topk(flat, math.ceil(flat.numel() * (1 - S)))

for name, f in [("snip", snip), ("grasp", grasp), ("synflow", synflow), ("prospr", prospr)]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter(); f(); times.append(time.perf_counter() - t0)
    print(f"pytorch {torch.__version__} threads {torch.get_num_threads()} resnet20 {name} {S}: median {statistics.median(times):.2f} s, best {min(times):.2f} s over {runs} runs")
print(f"pytorch peak resident memory (all four, one process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MB")
