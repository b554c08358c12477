"""The crm-tui benchmark harness: ``python -m bench`` (``make bench``) and ``python -m bench --quick``.

It measures the product at scale against the machine's own limits (issue 5): every figure is put
beside a baseline measured in the same run, as a ratio, because these machines are shared and noisy.

Layout:

* ``run``        the orchestrator: data set, servers, scenarios in order, RESULTS.md
* ``dataset``    seeding (cached under bench/data/, keyed by size and seed), work copies, users
* ``procs``      subprocesses (crm-server, workers, the daemon), RSS/CPU sampling, cleanup on Ctrl-C
* ``worker``     ``python -m bench.worker NAME CONFIG OUT``: one scenario in a fresh process
* ``scenarios``  one module per scenario; each ``run(cfg) -> dict`` runs inside a worker
* ``profiling``  pyinstrument wrappers and a per-statement SQL timer
* ``report``     bench/RESULTS.md and the stdout summary
"""
