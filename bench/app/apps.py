"""App config for the bench-only app: its own label, so it cannot clash with a project app."""

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench.app"
    label = "bench"
    verbose_name = "Benchmarks"
