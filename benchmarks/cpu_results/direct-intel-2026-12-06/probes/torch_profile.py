"""PyTorch's training step by op (torch.profiler, 2 threads): python benchmarks/cpu_results/direct-intel-2026-12-06/probes/torch_profile.py CLASS BATCH
(CLASS a benchmarks.torch_models class, e.g. TorchResNet, TorchTutorialNet)"""
import sys, time
import numpy as np, torch
sys.path.insert(0, '.')
from benchmarks.torch_models import *
import benchmarks.torch_models as tm
torch.set_num_threads(2)
n = int(sys.argv[2]); cls = getattr(tm, sys.argv[1])
m = cls(); opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(n, 3, 32, 32); y = torch.randint(0, 10, (n,))
loss_fn = torch.nn.CrossEntropyLoss()
def step():
    opt.zero_grad(); out = m(x); out = out[0] if isinstance(out, tuple) else out; loss = loss_fn(out, y); loss.backward(); opt.step()
for _ in range(20): step()
ts = []
for _ in range(100):
    t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
print(f"median step {np.median(ts)*1e3:.3f} ms")
with torch.profiler.profile() as prof:
    for _ in range(30): step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
