nox -s bench                         # everything: all libraries, all workloads, 3 repeats
python -m benchmarks                 # the same, from any Python >= 3.10
python -m benchmarks --quick         # scale 0.1, 1 repeat: a couple of minutes
python -m benchmarks --libs asyncz,apscheduler --workloads dispatch,latency --repeats 5
python -m benchmarks --workloads sql_store/postgres --scale 0.5
