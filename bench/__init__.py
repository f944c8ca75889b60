"""``python -m bench``: throughput, latency and memory of a real server under load (see TARGETS.md)."""
