"""PyTorch CPU reference for scripts/bench-nn (optional; run with a Python that has torch).

ResNet-20 (CIFAR, option-B shortcuts) forward+backward on a batch of 128, training-mode BN,
cross-entropy, median over runs; the same work mge-bench measures.
"""
import resource, statistics, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

class Block(nn.Module):
    def __init__(s, i, o, stride):
        super().__init__()
        s.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)
        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)
        s.shortcut = nn.Sequential()
        if stride != 1 or i != o:
            s.shortcut = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))
    def forward(s, x):
        return F.relu(s.bn2(s.conv2(F.relu(s.bn1(s.conv1(x))))) + s.shortcut(x))

class ResNet20(nn.Module):
    def __init__(s, classes=10):
        super().__init__()
        s.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False); s.bn1 = nn.BatchNorm2d(16)
        layers, i = [], 16
        for st, w in enumerate([16, 32, 64]):
            for b in range(3):
                layers.append(Block(i, w, 2 if st > 0 and b == 0 else 1)); i = w
        s.layers = nn.Sequential(*layers); s.linear = nn.Linear(64, classes)
    def forward(s, x):
        out = s.layers(F.relu(s.bn1(s.conv1(x))))
        return s.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
torch.manual_seed(0)
model = ResNet20().train()
x = torch.randn(128, 3, 32, 32); y = torch.randint(0, 10, (128,))
def step():
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
step()
times = []
for _ in range(runs):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
m = statistics.median(times)
print(f"pytorch {torch.__version__} threads {torch.get_num_threads()} resnet20 forward+backward batch 128: median {m*1e3:.1f} ms, {128/m:.0f} images/s")
model.eval()
with torch.no_grad():
    model(x); times = []
    for _ in range(runs):
        t0 = time.perf_counter(); model(x); times.append(time.perf_counter() - t0)
m = statistics.median(times)
print(f"pytorch resnet20 forward (eval) batch 128: median {m*1e3:.1f} ms, {128/m:.0f} images/s")
print(f"pytorch peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MB")
