"""Quitting while a sync is pushing to a slow server (issue 10: a new user's `q` seemed ignored for
~20 s during a push: the app's screen went, but crm-tui waited for the push's answer before it
ended). The real `crm-tui` in a terminal, the real server; a FaultProxy holds the push's answer."""

from __future__ import annotations

import sys
import time

import pexpect

from support.client import ROOT, ClientReplica
from support.faultproxy import FaultProxy, gate


def test_q_then_y_ends_crm_tui_while_a_push_is_held(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "alex", server, "alex", url=proxy.url)
        assert client.sync().ok
        with client.replica() as replica:
            replica.writes.update("customer", "cus-0000003", {"city": "Trondheim"})
        held = gate(after_upstream=True)
        proxy.add_rule(held, method="POST", path="/v1/batch")
        # The push's answer is held far longer than the test waits for crm-tui to end.
        env = client.env(CRM_TUI_SYNC__READ_TIMEOUT="600", CRM_TUI_ANIMATIONS="false")
        app = pexpect.spawn(sys.executable, ["-m", "crm_tui.cli", "--data-dir", str(client.data_dir)],
                            env=env, cwd=str(ROOT), timeout=60, encoding="utf-8", dimensions=(30, 120))
        try:
            assert held.entered.wait(60), "the app's start-up sync never pushed"
            app.expect("sending 1 change")
            app.send("\x1b")  # leave the search box: q is a command
            time.sleep(0.5)  # a lone esc, not the start of alt+q
            app.send("q")
            app.expect("Quit crm-tui")
            app.send("y")
            app.expect(pexpect.EOF)  # while the push's answer is still held
            app.close()
            assert app.exitstatus == 0
            assert not held._open.is_set()
        finally:
            held.open()
            if app.isalive():
                app.terminate(force=True)
