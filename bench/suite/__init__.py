"""The benchmark suite behind `bench/run.py`: reference servers, the services of this tree,
a multi-process load generator, the scenarios, and the report (docs/benchmarks.md + PNG).

Layout: `profile.py` (how long and how big), `processes.py` and `nginx.py` (what runs),
`procstat.py` (CPU and memory from /proc), `clients.py` (the parent's handle on the load
generator processes), `worker.py` + `loadgen.py` (the load generator itself, picows),
`seed.py` (users' todos written straight into SQLite), `scenarios/` (one module each),
`report.py`, `plot.py`, `progress.py`, `cli.py`.
"""
