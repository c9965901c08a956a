"""Repository contracts: the README's first commands, CI running exactly the README's test command."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    head = text.split("\n## ", 1)[0]
    return [m.strip() for m in re.findall(r"^    (python3 .+)$", head, flags=re.MULTILINE)]


def test_readme_opens_with_the_two_newcomer_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, commands
    install_and_run, install_and_test = commands
    assert "sample_data" in install_and_run and "sgadvisor" in install_and_run
    assert "pytest" in install_and_test


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci.splitlines()


def test_top_level_layout() -> None:
    for name in (
        "pyproject.toml",
        "sgadvisor",
        "templates",
        "tests",
        "sample_data",
        "README.md",
        ".ci",
        "bench",
    ):
        assert (REPO / name).exists(), name
