"""Benchmarks behind `kerasrwm bench ...`: each module has `add_arguments(parser)` and `run(args)`."""
