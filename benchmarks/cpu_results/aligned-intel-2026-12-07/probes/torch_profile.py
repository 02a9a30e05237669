"""PyTorch's own profile of a training step (torch.profiler, CPU, 2 threads): where its time goes.
Usage: PYTHONPATH=. python benchmarks/cpu_results/aligned-intel-2026-12-07/probes/torch_profile.py BATCH NET STEPS"""
import sys, torch, time
from torch.profiler import profile, ProfilerActivity

from benchmarks import torch_models
torch.set_num_threads(2)
b = int(sys.argv[1]); net = sys.argv[2] if len(sys.argv) > 2 else 'net2'
m = torch_models.TORCH_MODELS[net]()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(b, 3, 32, 32); y = torch.randint(0, 10, (b,))
def step():
    opt.zero_grad(); out = m(x); loss = torch.nn.functional.cross_entropy(out if not isinstance(out, tuple) else out[0], y); loss.backward(); opt.step()
for _ in range(20): step()
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
t = time.perf_counter()
for _ in range(n): step()
print('step ms', (time.perf_counter() - t) / n * 1e3)
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(n): step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
