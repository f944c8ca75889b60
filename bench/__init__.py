"""``python -m bench``: throughput, latency and memory of a real server under load (docs/performance.md)."""
