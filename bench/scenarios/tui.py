"""Scenario 2: keystroke to painted results in the TUI, headless (Textual Pilot), p50/p95.

Each character is sent as a key event the way ``Pilot.press`` sends it (through the driver), and
the clock stops at the first frame the compositor renders (``App._display``) after the search
screen shows the results for the text typed so far. Headless Textual renders frames but writes
them nowhere; the hook also encodes each frame to terminal escape codes, as a real terminal run
does, so that cost is counted. Keys are typed one at a time with a short pause after each paint.

Baseline, in the same process and rounds: the same harness typing the same keys into a plain
``Input`` in a minimal Textual app with no search behind it (stop: the first frame showing the
new value) — the floor of Textual's key handling and frame timing on this machine.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import variant
from bench.stats import summary

TYPED = ("smith", "mar", "northwind", "@gmail", "5512", "berlin", "zzqx", "anna sm")
SIZE = (120, 40)
SETTINGS = {"clock": "2026-11-25T09:00:00Z", "animations": False, "theme": "textual-dark", "sync_in_app": False}


class _Paint:
    """Hooks ``app._display``: records when the first frame satisfying ``done`` was rendered."""

    def __init__(self, app: Any, done: Any, echo: Any):
        from textual._compositor import CompositorUpdate

        self.app, self.done, self.echo = app, done, echo
        self.target: str | None = None
        self.t_paint: float | None = None
        self.t_echo: float | None = None
        self.frames = 0
        self.event = asyncio.Event()
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)  # what a real terminal run encodes and writes
            original(screen, renderable)
            if renderable is None:
                return
            self.frames += 1
            if self.target is None:
                return
            now = time.perf_counter()
            if self.t_echo is None and self.echo(self.target):
                self.t_echo = now
            if self.t_paint is None and self.done(self.target):
                self.t_paint = now
                self.event.set()

        app._display = display

    def arm(self, target: str) -> None:
        self.target, self.t_paint, self.t_echo = target, None, None
        self.event.clear()


def _key_event(ch: str) -> Any:
    from textual import events
    from textual.keys import _character_to_key

    key = ch if ch.isalnum() else _character_to_key(ch)
    return events.Key(key, ch)


async def _type(app: Any, box: Any, paint: _Paint, text: str, rec: dict[str, list[float]], extra: Any = None,
                think: float = 0.04) -> None:
    for ch in text:
        target = box.value + ch
        paint.arm(target)
        if extra:
            extra.arm()
        t0 = time.perf_counter()
        app._driver.send_message(_key_event(ch))
        await asyncio.wait_for(paint.event.wait(), 10)
        rec["paint"].append(paint.t_paint - t0)  # type: ignore[operator]
        rec["echo"].append((paint.t_echo or paint.t_paint) - t0)  # type: ignore[operator]
        if extra:
            extra.record(t0, paint.t_paint, rec)
        paint.target = None
        await asyncio.sleep(think)


class _SearchTimes:
    """Times the search screen's refresh_data and the replica search inside it (the bounded
    first window of matches the screen paints; the full count follows in a worker, untimed)."""

    def __init__(self, screen: Any, replica: Any):
        self.search_s = self.refresh_s = 0.0
        self.refresh_start = self.refresh_end = 0.0
        search = replica.search.window
        refresh = screen.refresh_data

        def timed_search(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return search(*a, **kw)
            finally:
                self.search_s = time.perf_counter() - t

        def timed_refresh() -> None:
            self.refresh_start = time.perf_counter()
            try:
                refresh()
            finally:
                self.refresh_end = time.perf_counter()
                self.refresh_s = self.refresh_end - self.refresh_start

        replica.search.window = timed_search
        screen.refresh_data = timed_refresh

    def arm(self) -> None:
        self.search_s = self.refresh_s = self.refresh_start = self.refresh_end = 0.0

    def record(self, t0: float, t_paint: float, rec: dict[str, list[float]]) -> None:
        rec["search"].append(self.search_s)
        rec["refresh"].append(self.refresh_s)
        rec["before_refresh"].append(self.refresh_start - t0 if self.refresh_start else float("nan"))
        rec["after_refresh"].append(t_paint - self.refresh_end if self.refresh_end else float("nan"))


async def _baseline_round(rec: dict[str, list[float]]) -> None:
    from textual.app import App
    from textual.widgets import Input

    class Floor(App[None]):
        def compose(self):
            yield Input(id="box")

    app = Floor()
    async with app.run_test(size=SIZE) as pilot:
        box = app.query_one("#box", Input)
        box.focus()
        box.cursor_blink = False
        await pilot.pause()
        paint = _Paint(app, lambda t: box.value == t, lambda t: box.value == t)
        for text in TYPED:
            box.value = ""
            await pilot.pause()
            await asyncio.sleep(0.05)
            await _type(app, box, paint, text, rec)


async def _product_round(cfg: dict[str, Any], rec: dict[str, list[float]], profile: str | None = None) -> dict:
    from crm_tui.config import Settings
    from screens.app import CrmApp

    replica = variant.open_replica(cfg["replica"], cfg["hot_dir"], cfg, clock=Settings(**SETTINGS).make_clock())
    app = CrmApp(replica, Settings(**SETTINGS), sync_runner=None)
    extra: dict[str, Any] = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        box = screen.search_box
        box.focus()
        await pilot.pause()
        prof = timer = None
        if profile:
            from bench.profiling import Profile, instrument_replica

            timer = instrument_replica(replica)
            prof = Profile(profile, interval=0.0005)
        times = _SearchTimes(screen, replica)
        paint = _Paint(app, lambda t: screen.query_text == t, lambda t: box.value == t)
        if prof is not None:
            prof.__enter__()
        keys = 0
        for text in TYPED:
            box.value = ""
            deadline = time.perf_counter() + 5
            while screen.query_text != "" and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            await _type(app, box, paint, text, rec, times)
            keys += len(text)
        if prof is not None:
            prof.__exit__(None, None, None)
            extra["profile"] = prof.result
        if timer is not None:
            extra["sql_breakdown"] = timer.top(10, per=keys)
        extra["rows_shown_last"] = screen.results.row_count
    replica.close()
    return extra


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    import screens.search

    debounce = getattr(screens.search, "DEBOUNCE", 0.0)  # the screen searches on every key now

    rounds = cfg.get("rounds", 3)
    product: dict[str, list[float]] = {k: [] for k in ("paint", "echo", "search", "refresh", "before_refresh",
                                                        "after_refresh")}
    floor: dict[str, list[float]] = {"paint": [], "echo": []}

    async def main() -> dict:
        for _ in range(rounds):
            await _baseline_round(floor)
            await _product_round(cfg, product)
        return {}

    asyncio.run(main())
    out: dict[str, Any] = {
        "typed": list(TYPED),
        "keystrokes": len(product["paint"]),
        "product": {k: summary([x for x in v if x == x]) for k, v in product.items()},
        "floor": {k: summary(v) for k, v in floor.items()},
        "debounce": debounce,
        "budget_above_floor": cfg.get("budget", 0.050),
    }
    above = out["product"]["paint"]["p95"] - out["floor"]["paint"]["p95"]
    out["p95_above_floor"] = above
    if above > out["budget_above_floor"] and cfg.get("profile"):
        scratch: dict[str, list[float]] = {k: [] for k in product}
        out.update(asyncio.run(_product_round(cfg, scratch, profile=cfg["profile"])))
    return out
