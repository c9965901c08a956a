"""The built wheel works on its own: console script, ``python -m``, templates found outside a checkout."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from sgadvisor.resources import templates_dir
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_templates_found_in_a_checkout() -> None:
    assert (templates_dir() / "README.md").is_file()


def test_wheel_installs_into_a_fresh_venv_and_finds_its_templates(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
    )
    wheel = next(dist.glob("sgadvisor-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    # The product only: the test stand-ins (tests/standins) and the tests stay in the checkout.
    assert not [n for n in names if n.startswith(("tests/", "sgadvisor/testing"))]
    assert "sgadvisor/cli.py" in names
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True)
    outside = tmp_path / "elsewhere"  # not the checkout: imports must come from the installed wheel
    outside.mkdir()
    probe = "import sgadvisor, sgadvisor.resources as r; print(r.templates_dir()); print(sgadvisor.__file__)"
    found = subprocess.run([python, "-c", probe], cwd=outside, check=True, capture_output=True, text=True)
    templates, package = found.stdout.splitlines()
    assert "site-packages" in package and "site-packages" in templates
    assert (Path(templates) / "README.md").is_file()
    version = subprocess.run(
        [env_dir / "bin" / "sgadvisor", "--version"], cwd=outside, capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("sgadvisor 0.")
    module = subprocess.run(
        [python, "-m", "sgadvisor", "--help"], cwd=outside, capture_output=True, text=True
    )
    assert module.returncode == 0 and "edges" in module.stdout
