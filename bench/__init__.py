"""Benchmarks of the job platform: `python -m bench [NAME...]` runs scenarios and records their figures."""
