"""tcpbench's benchmark suite: run `python -m benchmarks --help` (or `benchmarks/run --help`)."""
