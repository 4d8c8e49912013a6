"""Checks the GitHub workflows with zizmor (security) and actionlint (correctness).

The same checks as ci.yml's lint job: both tools exit 0, and actionlint prints
nothing. A tool that is not installed is skipped here, but not under CI (CI=true),
where tests/requirements.txt installs both.
"""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(tool, *args):
    """Runs the tool installed next to this Python (its venv), or else on PATH."""
    beside = os.path.dirname(sys.executable)
    found = shutil.which(tool, path=beside) or shutil.which(tool)
    if found is None:
        message = f"{tool} is not installed (pip install -r tests/requirements.txt)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [found, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    return result.returncode, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    status, output = run(
        "zizmor", "--offline", os.path.join(ROOT, ".github", "workflows")
    )
    assert status == 0, output


def test_actionlint_finds_nothing():
    # actionlint finds .github/workflows in the working directory by itself.
    status, output = run("actionlint")
    assert status == 0 and output == "", output
