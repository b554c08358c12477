"""One module per scenario of issue 5; each ``run(cfg) -> dict`` runs inside a bench.worker process."""
