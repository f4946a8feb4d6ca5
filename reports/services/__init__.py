"""Report services: the work itself, in plain functions, tested without a broker."""
