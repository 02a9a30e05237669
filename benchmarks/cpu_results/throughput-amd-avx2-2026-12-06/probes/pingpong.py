import threading, queue, time, statistics, sys
a, b = queue.SimpleQueue(), queue.SimpleQueue()
def helper():
    while True:
        x = a.get()
        if x is None: return
        b.put(x)
t = threading.Thread(target=helper, daemon=True); t.start()
ts = []
for i in range(3000):
    t0 = time.perf_counter(); a.put(1); b.get(); ts.append(time.perf_counter() - t0)
print("SimpleQueue round trip us median %.1f p10 %.1f" % (statistics.median(ts[100:]) * 1e6, sorted(ts)[300] * 1e6))
print("switchinterval", sys.getswitchinterval())
