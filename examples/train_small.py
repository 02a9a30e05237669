"""Train the CIFAR-10 tutorial net for a few steps on random data (no dataset needed)."""
import numpy as np

import minicnn as mc
from minicnn import nn

mc.set_backend("numpy")          # or "numba", "cupy"
mc.manual_seed(0)
net = mc.models.TutorialNet()    # conv 3->6->16, fc 400->120->84->10
criterion = nn.CrossEntropyLoss()
opt = mc.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

rng = np.random.default_rng(0)
x = mc.asarray(rng.standard_normal((64, 3, 32, 32)).astype(np.float32))
y = mc.asarray(rng.integers(0, 10, 64))
for step in range(20):
    logits = net(x)                       # forward, caches what backward needs
    loss = criterion(logits, y)
    opt.zero_grad()
    net.backward(criterion.backward())    # explicit backward, fills .grad
    opt.step()
    if step % 5 == 0:
        print(f"step {step:2d}  loss {float(loss):.4f}")
