"""Scenario 7 (TUI part): resident memory of the app with the full replica open.

``tui``: the real CrmApp, headless at 120×40, over the full replica: RSS after mounting the search
screen, after a series of searches, and after opening a number of customer 360 views; plus the
process's peak (VmHWM). ``floor``: the baseline — a minimal Textual app (one Input) in a fresh
process, i.e. what Python and Textual cost before any CRM code or data.
"""

from __future__ import annotations

import asyncio
import gc
import random
from typing import Any

import psutil

from bench import variant
from bench.procs import vm_hwm
from bench.scenarios.tui import SETTINGS, SIZE

SEARCHES = ("s", "smi", "smith", "mar", "northwind", "@gmail", "5512", "berlin", "anna smith", "zzqx")


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


class _Stages(dict):
    """stage -> RSS now; ``hwm`` keeps the process's peak so far at each stage (VmHWM only grows,
    so the stage where it jumps is the one that made the peak)."""

    def __init__(self) -> None:
        super().__init__()
        self.hwm: dict[str, int | None] = {}

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(key, value)
        self.hwm[key] = vm_hwm(psutil.Process().pid)


def open_app_replica(cfg: dict[str, Any], **options: Any):
    """The bench replica opened as `crm-tui` opens its own (the launcher's page cache and temp
    store, not the library's defaults: the app's memory is what is measured)."""
    from crm_tui.launch import UI_REPLICA

    return variant.open_replica(cfg["replica"], cfg["hot_dir"], cfg, **UI_REPLICA, **options)


def tui(cfg: dict[str, Any]) -> dict[str, Any]:
    from crm_tui.config import Settings
    from screens.app import CrmApp
    from screens.navigation import open_customer

    stages = _Stages()
    stages["imported"] = _rss()

    async def main() -> None:
        replica = open_app_replica(cfg, clock=Settings(**SETTINGS).make_clock())
        stages["replica_open"] = _rss()
        app = CrmApp(replica, Settings(**SETTINGS), sync_runner=None)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await asyncio.sleep(0.3)
            stages["mounted"] = _rss()
            screen = app.screen
            for q in SEARCHES:
                screen.search_for(q)
                await pilot.pause()
            stages["after_searches"] = _rss()
            n = replica.count("customer")
            rng = random.Random(7)
            for _ in range(cfg.get("opens", 20)):
                open_customer(app, f"cus-{rng.randrange(1, n + 1):07d}")
                await pilot.pause()
                await asyncio.sleep(0.05)
                app.pop_screen()
                await pilot.pause()
            stages["after_360_opens"] = _rss()
            for mode in ("tickets", "pipeline", "reports"):
                app.show_section(mode)
                await pilot.pause()
                await asyncio.sleep(0.2)
                stages[f"section_{mode}"] = _rss()
            app.show_section("search")
            await pilot.pause()
            stages["after_sections"] = _rss()
        replica.close()

    asyncio.run(main())
    return {"stages": dict(stages), "hwm": stages.hwm, "peak": vm_hwm(psutil.Process().pid),
            "budget": cfg.get("budget", 200 * 1024 * 1024)}


def floor(cfg: dict[str, Any]) -> dict[str, Any]:
    from textual.app import App
    from textual.widgets import Input

    class Floor(App[None]):
        def compose(self):
            yield Input(id="box")

    stages: dict[str, int] = {"imported": _rss()}

    async def main() -> None:
        app = Floor()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await asyncio.sleep(0.3)
            stages["mounted"] = _rss()
            for q in SEARCHES:
                await pilot.press(*q)
            stages["after_typing"] = _rss()

    asyncio.run(main())
    return {"stages": stages, "peak": vm_hwm(psutil.Process().pid)}
