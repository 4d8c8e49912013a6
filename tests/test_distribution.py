"""GCRMSprop under keras.distribution on JAX, with two virtual CPU devices.

A subprocess (JAX reads XLA_FLAGS when it starts) trains the same small model with
the same data three ways: on one device, with `DataParallel`, and with
`ModelParallel` whose `LayoutMap` shards the conv and dense kernels along their output
axis. Sharded or not, the weights must come out the same.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import json, sys, traceback

    import jax
    import keras
    import numpy as np

    from gradient_centralization import GCRMSprop

    assert len(jax.devices("cpu")) == 2, jax.devices()
    distribution = keras.distribution


    def build():
        return keras.Sequential(
            [
                keras.Input((8, 8, 2)),
                keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                keras.layers.Flatten(),
                keras.layers.Dense(6, activation="relu", name="hidden"),
                keras.layers.Dense(2, name="out"),
            ]
        )


    def fit(optimizer):
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=optimizer, loss="mse")
        rng = np.random.default_rng(2)
        x = rng.normal(size=(32, 8, 8, 2)).astype("float32")
        y = np.stack([x.mean(axis=(1, 2, 3)), x.std(axis=(1, 2, 3))], axis=1)
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        kernels = {
            layer.name: len(layer.kernel.value.sharding.device_set) > 1
            and not layer.kernel.value.sharding.is_fully_replicated
            for layer in model.layers
            if hasattr(layer, "kernel")
        }
        return [np.asarray(w) for w in model.get_weights()], kernels


    def model_parallel():
        mesh = distribution.DeviceMesh((1, 2), ["batch", "model"])
        layout_map = distribution.LayoutMap(mesh)
        # Keys are matched with re.fullmatch against the whole variable path.
        layout_map[".*/conv/kernel"] = (None, None, None, "model")
        layout_map[".*/hidden/kernel"] = (None, "model")
        layout_map[".*/out/kernel"] = (None, "model")
        return distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")


    single, _ = fit(GCRMSprop(0.01))
    plain, _ = fit(keras.optimizers.RMSprop(0.01))
    results = {
        "gc_differs_from_rmsprop": any(
            not np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(single, plain)
        )
    }
    for name, make in [
        ("DataParallel", lambda: distribution.DataParallel()),
        ("ModelParallel", model_parallel),
    ]:
        try:
            with make().scope():
                weights, sharded = fit(GCRMSprop(0.01))
            results[name] = {
                "max_abs_difference": max(
                    float(np.abs(a - b).max()) for a, b in zip(weights, single)
                ),
                "same_shapes": [w.shape for w in weights] == [w.shape for w in single],
                "sharded_kernels": sharded,
            }
        except Exception as error:
            results[name] = {"error": "".join(traceback.format_exception_only(error))}
    print("RESULTS " + json.dumps(results))
    """)


@pytest.fixture(scope="module")
def results():
    pytest.importorskip("jax")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={
            **os.environ,
            "KERAS_BACKEND": "jax",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "PYTHONPATH": ROOT,
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (line,) = [
        line for line in result.stdout.splitlines() if line.startswith("RESULTS ")
    ]
    return json.loads(line[len("RESULTS ") :])


def test_gc_changes_the_one_device_result(results):
    assert results["gc_differs_from_rmsprop"]


@pytest.mark.parametrize(
    "name, sharded",
    [
        ("DataParallel", {"conv": False, "hidden": False, "out": False}),
        ("ModelParallel", {"conv": True, "hidden": True, "out": True}),
    ],
)
def test_distributed_fit_matches_one_device(results, name, sharded):
    outcome = results[name]
    if "error" in outcome:
        pytest.xfail(f"Keras cannot train with {name} here: {outcome['error']}")
    assert outcome["sharded_kernels"] == sharded
    assert outcome["same_shapes"]
    assert outcome["max_abs_difference"] < 1e-5
