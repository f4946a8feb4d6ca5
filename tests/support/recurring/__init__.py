"""A test app with one recurring job on a schedule of seconds, for real scheduler processes."""
