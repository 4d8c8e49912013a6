"""Runs the optimizer, layer, identity and keras_hub tests again on the JAX and PyTorch
backends.

Keras fixes its backend when it is first imported, so each backend gets its own
pytest process. Both processes start together, when the first of these tests runs:
much of their time is Python dispatching eager operations, so on a 2-core machine
they overlap. A backend that is not installed is skipped here, but not under CI
(CI=true), where .ci/run installs all three.
"""

import importlib.util
import os
import subprocess
import sys
import warnings

import keras
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
BACKEND_TESTS = [
    "test_centralize.py",
    "test_optimizer.py",
    "test_layers.py",
    "test_keras_hub.py",
    "test_identity.py",
]
# test_distribution.py starts its own JAX process (it needs XLA_FLAGS set first), and
# test_digits_gc_vs_rmsprop.py only runs the benchmark script: neither belongs here.
BACKENDS = {"jax": "jax", "torch": "torch"}  # backend: the module it needs


@pytest.fixture(scope="module")
def backend_runs():
    """The pytest process of each other installed backend, all started at once."""
    processes = {
        backend: subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
            + BACKEND_TESTS,
            cwd=TESTS,
            env={**os.environ, "KERAS_BACKEND": backend},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend, module in BACKENDS.items()
        if keras.backend.backend() != backend and importlib.util.find_spec(module)
    }
    yield processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("backend, module", BACKENDS.items())
def test_optimizer_tests_pass_on(backend, module, backend_runs):
    if keras.backend.backend() == backend:
        pytest.skip(f"this process already runs on {backend}")
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed (pip install -r tests/requirements.txt)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    process = backend_runs[backend]
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stdout[-6000:] + stderr[-3000:]
    assert " passed" in stdout
    # What the subprocess skipped (a Keras version's own bug, ...) is shown here,
    # in the warnings summary, rather than hidden behind this one passed test.
    skipped = [line for line in stdout.splitlines() if line.startswith("SKIPPED ")]
    if skipped:
        warnings.warn(f"on {backend}, skipped:\n" + "\n".join(skipped), stacklevel=1)
