"""The coursework tasks and tools: ``python -m experiments.task1|task2|task3|resnet|visualize --help``
from the repository root, or ``python -m minicnn.experiments.<name>`` from anywhere once minicnn is
installed (``pip install -e .`` installs this folder as ``minicnn.experiments``).

* task1     -- the PyTorch CIFAR-10 tutorial net
* task2     -- the deconvolutional model (classifier + decoder, CE + lambda * MSE)
* task3     -- per-channel latent reconstructions from task2's checkpoint
* resnet    -- ResNet-20/32/56 from scratch on CIFAR-10
* visualize -- deconvnet projections, saliency, guided backprop, Grad-CAM, occlusion,
               activation maximisation of a trained classifier checkpoint
"""
