"""Side-by-side benchmarks of dockyard and its peers on loopback: ``python -m benchmarks.run``."""
