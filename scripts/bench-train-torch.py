"""PyTorch CPU reference for scripts/bench-train (optional; run with a Python that has torch).

The same work as scripts/bench-train.mge: one ResNet-20 training step (forward, backward,
optim.SGD update with momentum and weight decay) on a batch of 128 — dense, and with ERK-like
masks applied after each step, which PyTorch computes densely — and model.eval() over 10,000
images in batches of 250. Prints median seconds per step, images/s and the peak RSS.
Usage: bench-train-torch.py RUNS THREADS
"""
import importlib.util, os, resource, statistics, sys, time
import torch, torch.nn.functional as F

runs, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ref", os.path.join(here, "../Tests/Fixtures/training/make_reference.py"))
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
torch.manual_seed(0)
model = ref.ResNet20().train()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
x = torch.randn(128, 3, 32, 32); y = torch.randint(0, 10, (128,))

def step():
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()

step()
times = []
for _ in range(runs):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(f"torch train step  median {statistics.median(times):.3f} s  (threads {threads})")

model.eval()
data = torch.randn(10000, 3, 32, 32)
with torch.no_grad():
    model(data[:250])
    times = []
    for _ in range(max(1, runs // 3)):
        t = time.perf_counter()
        for i in range(0, 10000, 250):
            model(data[i:i + 250])
        times.append(time.perf_counter() - t)
print(f"torch evaluate    {10000 / statistics.median(times):.0f} images/s")
print(f"torch peak RSS    {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
