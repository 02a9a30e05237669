"""PyTorch's Net2 training step (SGD momentum, CE) at batch N, 2 threads, by op:
python torch_profile.py N  -> torch.profiler's table (self CPU time per op) and the median step."""
import sys, time
import numpy as np, torch
from benchmarks.torch_models import TorchNet2
torch.set_num_threads(2)
n = int(sys.argv[1])
m = TorchNet2(); opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(n, 3, 32, 32); y = torch.randint(0, 10, (n,))
loss_fn = torch.nn.CrossEntropyLoss()
def step():
    opt.zero_grad(); loss = loss_fn(m(x), y); loss.backward(); opt.step()
for _ in range(20): step()
ts = []
for _ in range(200):
    t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
print(f"torch net2 b{n}: median step {np.median(ts)*1e3:.3f} ms")
t_opt = []
for _ in range(200):
    step(); t0 = time.perf_counter(); opt.step(); t_opt.append(time.perf_counter() - t0)
print(f"opt.step alone (after a step): median {np.median(t_opt)*1e3:.3f} ms")
with torch.profiler.profile() as prof:
    for _ in range(50): step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
