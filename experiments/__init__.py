"""The coursework tasks: ``python -m experiments.task1|task2|task3 --help`` from the repository root,
or ``python -m minicnn.experiments.task1|task2|task3`` from anywhere once minicnn is installed
(``pip install -e .`` installs this folder as ``minicnn.experiments``)."""
