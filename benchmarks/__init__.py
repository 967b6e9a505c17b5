"""``make bench``: every ``benchmarks/bench_*.py`` module's ``run()`` results, with ratios.

Each benchmark measures sscard against a baseline measured in the same run
(a naive implementation, raw pyscard, a trivial echo card), so the numbers
mean something on any machine. Performance targets live here, never in unit
tests.
"""
