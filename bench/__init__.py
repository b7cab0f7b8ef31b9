"""Client benchmarks (pytest-codspeed); see tools/bench.py."""
