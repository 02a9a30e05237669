"""In-process A/B of the optimisers' steps on Numba's threads for large tensors (kernels/cpu/optim.py,
OPTIM_TEAM_MIN = 2^16) against the serial build for every tensor (what ran before): one runner,
the threshold switched in alternating blocks of training steps; and SGD.step alone.
Run from the repo root: PYTHONPATH=. python benchmarks/cpu_results/amd-avx2-2026-12-07/sgd_team/sgd_team_ab.py net2:4 ..."""
import sys, time, timeit
import numba, numpy as np
numba.set_num_threads(2)
from benchmarks.common import MinicnnRunner
from minicnn.kernels.cpu import optim

ON, OFF = optim.OPTIM_TEAM_MIN, 1 << 62
for spec in sys.argv[1:]:
    net, bs = spec.split(":"); bs = int(bs)
    r = MinicnnRunner(net, "numba", bs)
    for v in (ON, OFF):
        optim.OPTIM_TEAM_MIN = v
        for _ in range(10): r.step()
    opt = {}
    for v in (ON, OFF, ON, OFF):
        optim.OPTIM_TEAM_MIN = v
        opt.setdefault(v, []).append(min(timeit.repeat(r.opt.step, number=200, repeat=5)) / 200 * 1e6)
    res = {ON: [], OFF: []}; k = max(3, int(300 / bs))
    for rnd in range(25):
        for v in ((ON, OFF) if rnd % 2 == 0 else (OFF, ON)):
            optim.OPTIM_TEAM_MIN = v
            t = time.perf_counter()
            for _ in range(k): r.step()
            res[v].append((time.perf_counter() - t) / k * 1e3)
    optim.OPTIM_TEAM_MIN = ON
    a, b = np.array(res[ON]), np.array(res[OFF]); q = np.percentile(a / b, [25, 75])
    print(f"{net} b{bs}: SGD.step team {min(opt[ON]):.1f} us, serial {min(opt[OFF]):.1f} us; training step team "
          f"{np.median(a):.3f} ms, serial {np.median(b):.3f} ms; team/serial {np.median(a / b):.3f} "
          f"(quartiles {q[0]:.3f}-{q[1]:.3f})", flush=True)
