"""``python -m bench.worker NAME CONFIG.json OUT.json``: run one scenario in this fresh process.

A fresh process per scenario keeps the measurements apart (no warm caches or leftover memory from
another scenario) and makes the process's own peak RSS a figure of that scenario alone.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time


def main() -> None:
    name, cfg_path, out_path = sys.argv[1:4]
    for key in [k for k in os.environ if k.startswith("CRM_TUI_")]:
        del os.environ[key]
    with open(cfg_path) as fh:
        cfg = json.load(fh)
    module = importlib.import_module(f"bench.scenarios.{name.split(':')[0]}")
    fn = getattr(module, name.split(":")[1] if ":" in name else "run")
    t0 = time.perf_counter()
    result = fn(cfg)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["_process"] = {
        "seconds": time.perf_counter() - t0,
        "max_rss": usage.ru_maxrss * 1024,
        "cpu": usage.ru_utime + usage.ru_stime,
    }
    tmp = out_path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    os.replace(tmp, out_path)


if __name__ == "__main__":
    main()
