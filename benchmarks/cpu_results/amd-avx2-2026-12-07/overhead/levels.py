import timeit, numpy as np, minicnn as mc
from minicnn import nn, backend
mc.set_backend('numba')
import numba; numba.set_num_threads(2)
from kernels.cpu import direct, direct_blocked, CONV_SCHEDULE as S
import sys
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1
conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
x = mc.asarray(np.zeros((N, 8, 8, 8), np.float32)); w = conv.weight.data
y = np.empty((N, 8, 8, 8), np.float32)
items = S.direct_items(N, N * w.size * 64)
print('items', items)
n = 20000
def t(f): 
    f(); return timeit.timeit(f, number=n) / n * 1e6
print('layer     ', t(lambda: conv(x)))
print('schedule  ', t(lambda: S.conv2d_forward(x, w, None, (1, 1), (1, 1))))
print('direct_fwd', t(lambda: S.direct_conv2d_forward(x, w, None, (1, 1), (1, 1), (N, 8, 8, 8))))
print('conv2d_direct', t(lambda: direct.conv2d_direct(x, w, None, (1, 1), (1, 1), out=y, ranges=items)))
print('blocked.forward', t(lambda: direct_blocked.forward(x, w, w.reshape(-1)[:8], False, 1, 1, y, ranges=items, stride=(1, 1))))
g = np.ones_like(y)
print('layer bwd ', t(lambda: conv.backward(g)))
print('input_grad', t(lambda: direct.conv2d_direct_input_grad(g, w, 8, 8, (1, 1), (1, 1), ranges=items)))
print('weight_grad', t(lambda: direct.conv2d_direct_weight_grad(x, g, 3, 3, (1, 1), (1, 1), ranges=items)))
