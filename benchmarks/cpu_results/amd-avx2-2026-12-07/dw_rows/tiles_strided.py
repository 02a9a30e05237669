import numpy as np, time, sys
exec(open(__file__.replace('tiles_strided.py', 'tiles_base.py')).read().split("rng=np.random")[0])
def wg2(x, d, ph, pw, kh, kw, dw, ranges, tile, sh):
    bounds = bounds_of(ranges, x.shape[0]); parts = bounds.size - 1
    dws = workspace.kept("dw_ranges", (parts, dw.size))
    n, c, h, wd = x.shape; o, oh, ow = d.shape[1], d.shape[2], d.shape[3]; sw = sh
    widest = int(_widest(bounds))
    ov, tr = tile
    _, _, op, npos, _, cp = _channels_geometry(c, h, wd, o, oh, ow, ph, pw, sh, sw, ov * LANES)
    row = sum(_channels_lengths(c * kh * kw, op, cp, npos, _group(widest, cp + npos * op)))
    run(_weight_grad_channels_impl, dict(OV=ov, TR=tr, KW=int(kw), NACC_C=ov * tr * kw, OW=int(ow), SH=sh, SW=sw),
        (x, d, ph, pw, kh, kw, dws, workspace.kept("dw_scratch", (parts, row))), bounds)
    flat = dw.reshape(-1); flat[...] = dws[0]
    for r in range(1, parts): flat += dws[r]
    return dw
rng=np.random.default_rng(0)
def med(f, reps=11):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)*1e3
for N in (4, 128):
    for (C, O, H, s) in ((16, 32, 32, 2), (32, 64, 16, 2), (64, 64, 16, 1), (32, 32, 16, 1), (64, 64, 8, 1)):
        oh = H // s
        x=rng.standard_normal((N,C,H,H),dtype=np.float32); dy=rng.standard_normal((N,O,oh,oh),dtype=np.float32)
        rg=[(0,N//2),(N//2,N)]
        fl = 2*N*C*O*9*oh*oh/1e9
        dw = np.empty((O,C,3,3),np.float32)
        res = {}
        for tile in ((1,3),(2,1),(3,1)):
            t = med(lambda: wg2(x, dy, 1, 1, 3, 3, dw, rg, tile, s))
            res[str(tile)] = f'{t:.2f} ms ({fl/t*1e3:.0f})'
        print(f'N{N} {C}->{O} {H}x{H} s{s}:', res, 'default', channel_tile(O, 3, 3))
