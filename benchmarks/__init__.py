"""Epoch benchmarks for ``portable_nn``: ``python -m benchmarks.bench_epoch --help``."""
