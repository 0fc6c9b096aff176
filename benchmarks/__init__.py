"""Benchmarks of the exported streaming models: latency, memory, roofline, quality, throughput.

`python -m benchmarks.run --output_dir=DIR` writes DIR/results.json, DIR/summary.md and
DIR/latency.png; see benchmarks/run.py.
"""
