"""deploy/redis-sentinel/ (the fixed path) is the package deploy.redis_sentinel."""

from __future__ import annotations

import sys
from pathlib import Path

import deploy.redis_sentinel.redisset
import tests.procs  # noqa: F401  (what the integration tests import first)

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "deploy" / "redis-sentinel"


def test_the_package_is_the_fixed_folder_through_a_symlink() -> None:
    link = ROOT / "deploy" / "redis_sentinel"
    assert link.is_symlink() and link.resolve() == FOLDER
    assert Path(deploy.redis_sentinel.redisset.__file__).resolve().parent == FOLDER


def test_no_deploy_module_becomes_a_top_level_module() -> None:
    names = {path.stem for path in FOLDER.glob("*.py")} - {"__init__"}
    assert {"status", "probes", "nodes", "sentinelset"} <= names
    assert not names & set(sys.modules)
    assert str(FOLDER) not in sys.path
