"""Side-by-side benchmarks of asyncz against its peers; run with `python -m benchmarks`.

`runner` orchestrates (environments, subprocesses, aggregation), `worker` is the code that runs
inside each measured process, `workloads` and `adapters` are shared by every library, `report`
renders the markdown. See docs/benchmarks.md.
"""
