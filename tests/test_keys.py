"""Replica keys: where they are kept, what happens when they are not there, and that every
product path opens the replica through the one helper that finds them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from crm_tui import keyring_store, replica_key
from crm_tui.config import SecuritySettings, Settings
from crm_tui.paths import Paths

ROOT = Path(__file__).resolve().parent.parent


def paths_in(tmp_path) -> Paths:
    return Paths(data_dir=tmp_path / "data", cache_dir=tmp_path / "data" / "hot", config_dir=tmp_path / "config")


def test_two_processes_creating_a_key_at_once_agree_on_the_first(tmp_path):
    paths = paths_in(tmp_path)
    first = replica_key.create(paths, Settings())
    replica_key.forget(paths)  # as if the second one ran in another process
    second = replica_key.create(paths, Settings())
    assert second == first
    info = replica_key.read_key_info(paths)
    assert keyring_store.get_secret(f"replica-key:{info['key_id']}") == first.hex()


def test_a_key_missing_from_the_keyring_is_said_plainly(tmp_path):
    paths = paths_in(tmp_path)
    replica_key.create(paths, Settings())
    info = replica_key.read_key_info(paths)
    keyring_store.delete_secret(f"replica-key:{info['key_id']}")
    replica_key.forget(paths)
    with pytest.raises(replica_key.UnlockError, match="is not in the keyring"):
        replica_key.unlock(paths)


def test_asking_for_the_keyring_where_there_is_none_is_refused(tmp_path, no_keyring):
    settings = Settings(security=SecuritySettings(key_store="keyring"))
    with pytest.raises(replica_key.UnlockError, match=r'security\.key_store = "passphrase"'):
        replica_key.create(paths_in(tmp_path), settings)
    assert replica_key.store_for(Settings()) == "passphrase"


def test_product_code_opens_the_replica_only_through_open_replica():
    """A Replica built anywhere else would skip the key: only crm_tui/replicas.py builds one."""
    offenders = []
    for package in ("crm_tui", "sync", "screens", "cache"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Replica":
                    offenders.append(str(path.relative_to(ROOT)))
    assert sorted(set(offenders)) == ["cache/replica.py", "crm_tui/replicas.py"]


def test_destroying_a_key_leaves_the_replica_unreadable(tmp_path):
    """What a remote wipe calls: the keyring entry and the key file go, and nothing opens it."""
    paths = paths_in(tmp_path)
    replica_key.create(paths, Settings())
    name = f"replica-key:{replica_key.read_key_info(paths)['key_id']}"
    replica_key.destroy(paths)
    assert keyring_store.get_secret(name) is None and not replica_key.key_file(paths).exists()
    with pytest.raises(replica_key.UnlockError, match=r"key description .* is missing"):
        replica_key.unlock(paths)
