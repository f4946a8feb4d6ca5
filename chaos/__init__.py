"""The fault campaign: a mixed workload on real workers while a seeded schedule injects faults, then invariants."""
