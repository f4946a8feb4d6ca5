"""A bench-only Django app (loaded with EXTRA_APPS=bench.app) holding actors for full-stack workers."""
