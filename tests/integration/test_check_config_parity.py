"""check-config refuses whatever the daemon refuses: every refused configuration of the test suite.

The tests that make the daemon's configuration checks refuse a document (those
naming ``ConfigError`` or "configuration rejected": every unit test file, and
the integration tests that need no running daemon) run again in a pytest of
their own with ``tests.check_config_recorder``, which puts each refused
document to ``chargepoint check-config`` at the moment it is refused. Each
refusal must be among check-config's problems, with the same key and reason,
and check-config must exit 1.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
MARKS = ("ConfigError", "configuration rejected")
#: Fixtures that start a daemon or a CSMS: tests taking them are left to their own file.
DAEMON_FIXTURES = {"rig", "csms", "daemon", "station", "peer"}


def refusing_tests() -> list[str]:
    """Unit test files that name a refusal, and integration test functions that do without a daemon."""
    found = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests" / "unit").glob("test_*.py"))
             if any(mark in p.read_text(encoding="utf-8") for mark in MARKS)]
    for path in sorted((ROOT / "tests" / "integration").glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        text = path.read_text(encoding="utf-8")
        for node in ast.parse(text).body:
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            body = ast.get_source_segment(text, node) or ""
            if any(mark in body for mark in MARKS) and not {a.arg for a in node.args.args} & DAEMON_FIXTURES:
                found.append(f"{path.relative_to(ROOT)}::{node.name}")
    return found


def test_check_config_refuses_every_configuration_the_daemon_refuses(tmp_path: Path):
    record = tmp_path / "refusals.jsonl"
    tests = refusing_tests()
    assert len(tests) >= 10, tests
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                    "tests.check_config_recorder", *tests],
                   cwd=ROOT, env={**os.environ, "CHECK_CONFIG_RECORD": str(record)}, capture_output=True,
                   text=True, timeout=600)
    # Whether those tests pass is their own files' business; what they refused is this test's.
    refusals = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert len(refusals) >= 100, len(refusals)
    assert {r["what"] for r in refusals} >= {"parse", "read", "check_exposure"}
    disagreements = [r for r in refusals if "skipped" not in r and not (
        r["exit_code"] == 1 and {"key": r["key"], "reason": r["reason"]} in
        [{"key": e["key"], "reason": e["reason"]} for e in r["errors"]])]
    assert disagreements == []
    skipped = [r for r in refusals if "skipped" in r]
    assert len(skipped) <= len(refusals) // 20, skipped
