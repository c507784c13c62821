"""The authsvc benchmark harness: ``bench/run`` (see README, "Benchmark")."""
