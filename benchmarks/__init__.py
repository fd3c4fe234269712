"""Benchmarks and load tests, each run as `python -m benchmarks.<name>`."""

__all__: list[str] = []
