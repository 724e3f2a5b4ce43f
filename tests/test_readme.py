"""The README's Quickstart is what CI runs: two commands, the second exactly `.ci/run`'s."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quickstart() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_quickstart_is_exactly_two_commands_run_then_test() -> None:
    run, test = quickstart()
    assert run.endswith("ledgerca up")
    assert test.endswith("pytest")


def test_ci_runs_exactly_the_readmes_test_command_as_its_last_step() -> None:
    _, test = quickstart()
    script = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert script[-1] == test
