"""Benchmarks of purerl, run from the repository root as `python -m benchmarks.<script>` (see README.md)."""
