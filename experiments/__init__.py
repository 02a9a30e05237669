"""The coursework tasks: ``python -m experiments.task1|task2|task3 --help``."""
