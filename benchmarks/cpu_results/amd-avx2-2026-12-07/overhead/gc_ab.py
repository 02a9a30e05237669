import gc, sys, time, numpy as np
sys.path.insert(0, '.')  # run from the repository root
from benchmarks.common import make_runner
net, batch = sys.argv[1], int(sys.argv[2])
r = make_runner('numba', net, batch, 'train', threads=2); r.activate()
for _ in range(20): r.step()
print('gc counts', gc.get_count(), 'thresholds', gc.get_threshold(), 'tracked objects', len(gc.get_objects()))
n0 = gc.get_stats()
t=time.perf_counter(); k=0
while time.perf_counter()-t < 2: r.step(); k+=1
n1 = gc.get_stats()
print('steps', k, 'collections per step', [(b['collections']-a['collections'])/k for a,b in zip(n0,n1)])
def block(n):
    t=time.perf_counter()
    for _ in range(n): r.step()
    return (time.perf_counter()-t)/n
steps = max(5, int(0.5/block(3)))
rat=[]
for i in range(9):
    res={}
    for on in ((True, False) if i%2==0 else (False, True)):
        (gc.enable if on else gc.disable)()
        res[on]=block(steps)
    rat.append(res[False]/res[True])
gc.enable()
print(net, batch, 'gc off / on', np.percentile(rat,[25,50,75]).round(3))
