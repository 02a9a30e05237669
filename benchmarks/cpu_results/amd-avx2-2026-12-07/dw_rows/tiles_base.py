import numpy as np, time, sys
sys.path.insert(0,'/work/main')
import numba; numba.set_num_threads(2)
from kernels.cpu import direct_blocked_dw as dd, workspace
from kernels.cpu.direct_blocked import bounds_of, run
from kernels.cpu.direct_blocked_dw import *
from kernels.cpu.direct_blocked_dw import _channels_geometry, _channels_lengths, _group, _widest, _positions_geometry, _positions_lengths, _weight_grad_impl, _weight_grad_channels_impl
from threadpoolctl import threadpool_limits
LANES = dd.LANES
def wg(x, d, ph, pw, kh, kw, dw, ranges, kind, tile=None):
    bounds = bounds_of(ranges, x.shape[0]); parts = bounds.size - 1
    dws = workspace.kept("dw_ranges", (parts, dw.size))
    n, c, h, wd = x.shape; o, oh, ow = d.shape[1], d.shape[2], d.shape[3]; sh = sw = 1
    widest = int(_widest(bounds))
    if kind == 'ch':
        ov, tr = tile or channel_tile(o, kh, kw)
        _, _, op, npos, _, cp = _channels_geometry(c, h, wd, o, oh, ow, ph, pw, sh, sw, ov * LANES)
        row = sum(_channels_lengths(c * kh * kw, op, cp, npos, _group(widest, cp + npos * op)))
        run(_weight_grad_channels_impl, dict(OV=ov, TR=tr, KW=int(kw), NACC_C=ov * tr * kw, OW=int(ow), SH=sh, SW=sw),
            (x, d, ph, pw, kh, kw, dws, workspace.kept("dw_scratch", (parts, row))), bounds)
    else:
        ob = tile or weight_grad_tile(kw)
        nb, _, nq, _, cp = dd._positions_geometry(c, h, wd, o, oh, ow, ph, pw, kh, sh, sw, ob, kw, LANES)
        row = sum(dd._positions_lengths(o, c, kh, nb, nq, cp, ob, KW_MAX, LANES, _group(widest, cp + nb * ob * nq)))
        run(_weight_grad_impl, dict(OB=ob, KW=int(kw), NACC_DW=ob * KW_MAX, SH=sh, SW=sw),
            (x, d, ph, pw, kh, kw, dws, workspace.kept("dw_scratch", (parts, row))), bounds)
    flat = dw.reshape(-1); flat[...] = dws[0]
    for r in range(1, parts): flat += dws[r]
    return dw
rng=np.random.default_rng(0)
def med(f, reps=15):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e3
N=int(sys.argv[1]) if len(sys.argv)>1 else 128
for (C, H) in ((32,16),(64,8),(16,32),(32,8)):
    x=rng.standard_normal((N,C,H,H),dtype=np.float32); dy=rng.standard_normal((N,C,H,H),dtype=np.float32)
    rg=[(0,N//2),(N//2,N)] if N > 1 else None
    fl = 2*N*C*C*9*H*H/1e9
    dw = np.empty((C,C,3,3),np.float32)
    res = {}
    ref = None
    for kind, tile in (('ch',None),('ch',(2,1)),('ch',(1,1)),('pos',None),('pos',2)):
        t = med(lambda: wg(x, dy, 1, 1, 3, 3, dw, rg, kind, tile))
        res[f'{kind}{tile}'] = f'{t:.2f} ms ({fl/t*1e3:.0f})'
    print(f'N{N} C{C} {H}x{H}:', res)
