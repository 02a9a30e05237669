"""The channels weight gradient's tiles on ResNet-20's 3x3 shapes, batch N (argv[1]), two ranges:
python benchmarks/cpu_results/amd-avx2-2026-12-07/dw_rows/tiles.py N (PYTHONPATH=.). Helpers: tiles_base.py."""
import numpy as np, time, sys
exec(open(__file__.replace('tiles.py', 'tiles_base.py')).read().split("rng=np.random")[0])
rng=np.random.default_rng(0)
def med(f, reps=15):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e3
N=int(sys.argv[1]) if len(sys.argv)>1 else 128
for (C, H) in ((32,16),(64,8),(32,8)):
    x=rng.standard_normal((N,C,H,H),dtype=np.float32); dy=rng.standard_normal((N,C,H,H),dtype=np.float32)
    rg=[(0,N//2),(N//2,N)] if N > 1 else None
    fl = 2*N*C*C*9*H*H/1e9
    dw = np.empty((C,C,3,3),np.float32)
    res = {}
    ref = None
    for kind, tile in (('ch',None),('ch',(2,1)),('ch',(3,1)),('ch',(4,1)),('pos',None)):
        t = med(lambda: wg(x, dy, 1, 1, 3, 3, dw, rg, kind, tile))
        res[f'{kind}{tile}'] = f'{t:.2f} ms ({fl/t*1e3:.0f})'
    print(f'N{N} C{C} {H}x{H}:', res)
