"""The job platform: queues, middleware, enqueue helpers, dead letters and test helpers."""
