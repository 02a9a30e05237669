"""Products only, 1 BLAS thread: per-sample batched (n,O,K)@(n,K,L) vs wide (O,K)@(K,n*L),
for each conv layer of Net2 / tutorial / resnet20 shapes; forward, dW^T and dcols products,
plus the layout moves the wide schedule adds (d to wide, y from wide). Median of alternating reps."""
import sys, time
import numpy as np
from threadpoolctl import threadpool_limits

LAYERS = {  # name: (C, H, O, k, pad)
    "net2.conv1": (3, 32, 32, 5, 2), "net2.conv2": (32, 16, 64, 5, 2), "net2.conv3": (64, 8, 128, 5, 2),
    "tut.conv1": (3, 32, 6, 5, 0), "tut.conv2": (6, 14, 16, 5, 0),
    "res.16": (16, 32, 16, 3, 1), "res.32": (32, 16, 32, 3, 1), "res.64": (64, 8, 64, 3, 1),
}

def med(f, reps):
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

def main(ns=(1, 2, 4, 8, 16), reps=21):
    rng = np.random.default_rng(0)
    print("layer n | fwd per-sample / wide ms | dW^T ps / wide | dcols ps / wide | moves (to_wide d + from_wide y) ms | total ps / wide")
    for name, (c, h, o, k, p) in LAYERS.items():
        oh = h + 2 * p - k + 1; L = oh * oh; K = c * k * k
        w = rng.standard_normal((o, K), dtype=np.float32)
        for n in ns:
            cols = rng.standard_normal((n, K, L), dtype=np.float32)
            d = rng.standard_normal((n, o, L), dtype=np.float32)
            colsw = np.ascontiguousarray(cols.transpose(1, 0, 2)).reshape(K, n * L)
            dw_ = np.ascontiguousarray(d.transpose(1, 0, 2)).reshape(o, n * L)
            out = np.empty((n, o, L), np.float32)
            dcols = np.empty((n, K, L), np.float32)
            r = {}
            for rep in range(2):  # alternate
                r.setdefault("fps", []).append(med(lambda: np.matmul(w, cols, out=out), reps))
                r.setdefault("fw", []).append(med(lambda: w @ colsw, reps))
                r.setdefault("gps", []).append(med(lambda: np.matmul(cols, d.transpose(0, 2, 1)).sum(0) if n * K * o * 4 <= 2**20 else [cols[i] @ d[i].T for i in range(n)], reps))
                r.setdefault("gw", []).append(med(lambda: colsw @ dw_.T, reps))
                r.setdefault("dps", []).append(med(lambda: np.matmul(w.T, d, out=dcols), reps))
                r.setdefault("dw", []).append(med(lambda: w.T @ dw_, reps))
                y = w @ colsw
                r.setdefault("mv", []).append(med(lambda: (np.ascontiguousarray(d.transpose(1, 0, 2)), np.copyto(out, y.reshape(o, n, L).transpose(1, 0, 2))), reps))
            m = {key: 1e3 * min(v) for key, v in r.items()}
            tps = m["fps"] + m["gps"] + m["dps"]; tw = m["fw"] + m["gw"] + m["dw"] + m["mv"]
            print(f"{name} n={n:2d} | {m['fps']:.3f} / {m['fw']:.3f} | {m['gps']:.3f} / {m['gw']:.3f} | {m['dps']:.3f} / {m['dw']:.3f} | {m['mv']:.3f} | {tps:.3f} / {tw:.3f} ({tps / tw:.2f}x)", flush=True)

if __name__ == "__main__":
    with threadpool_limits(1, "blas"):
        main()
