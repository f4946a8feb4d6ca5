"""Code that runs inside the systems under test: their job modules and the enqueuer."""
