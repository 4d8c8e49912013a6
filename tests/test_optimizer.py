"""GCRMSprop and the GradientCentralization mixin on whichever backend is active.

tests/test_backends.py runs this file again under KERAS_BACKEND=jax and torch.
"""

import ast
import builtins
import os
import re

import keras
import numpy as np
import pytest

import gradient_centralization
from gradient_centralization import GCRMSprop, GradientCentralization

BACKEND = keras.backend.backend()
LEARNING_RATE = 0.01


def version_tuple(version):
    """(3, 10, 0) from "3.10.0"; a suffix ("+cpu", "rc1", ".dev...") is ignored."""
    major, minor, patch = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version).groups("0")
    return int(major), int(minor), int(patch)


def keras_older_than(version):
    return version_tuple(keras.version()) < version_tuple(version)


def keras_bug(reason, fixed_in, reference):
    """Skips a test that fails through Keras' own bug, naming the running version."""
    pytest.skip(
        f"Keras {keras.version()}: {reason}; "
        f"fixed in Keras {fixed_in} ({reference})"
    )


# Variables in Keras layout: a conv kernel, its bias, a dense kernel, a kernel of
# fan-in 1 and a dense kernel with a single output.
SHAPES = [(3, 3, 2, 4), (4,), (6, 3), (1, 5), (4, 1)]


def initial_values():
    rng = np.random.default_rng(0)
    return [rng.normal(size=shape).astype("float32") for shape in SHAPES]


def gradient_steps(steps=2):
    rng = np.random.default_rng(1)
    # An offset gives every gradient a clearly non-zero mean to remove.
    return [
        [(rng.normal(size=shape) + 0.5).astype("float32") for shape in SHAPES]
        for _ in range(steps)
    ]


def centralize_by_hand(grad, conv_only=False):
    if grad.ndim < (3 if conv_only else 2) or np.prod(grad.shape[:-1]) == 1:
        return grad
    return grad - grad.mean(axis=tuple(range(grad.ndim - 1)), keepdims=True)


def kernel_variables(values, prefix="layer"):
    """Variables with the paths Keras gives layers' kernels (`layer0/kernel`, ...):
    the block judges a kernel by its path, and leaves other names alone."""
    variables = []
    for index, value in enumerate(values):
        with keras.name_scope(f"{prefix}{index}"):
            variables.append(keras.Variable(value, name="kernel"))
    return variables


def apply_steps(optimizer, steps):
    variables = kernel_variables(initial_values())
    for grads in steps:
        optimizer.apply(
            [None if g is None else keras.ops.convert_to_tensor(g) for g in grads],
            variables,
        )
    return [keras.ops.convert_to_numpy(v) for v in variables]


def assert_all_close(actual, expected):
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def assert_some_differ(actual, expected):
    assert any(
        not np.allclose(a, e, rtol=1e-5, atol=1e-6) for a, e in zip(actual, expected)
    )


FEATURES = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "centered": {"centered": True},
    "clipnorm": {"clipnorm": 0.5},
    "clipvalue": {"clipvalue": 0.05},
    "global_clipnorm": {"global_clipnorm": 0.5},
    "weight_decay": {"weight_decay": 0.1},
    "ema": {"use_ema": True, "ema_overwrite_frequency": 1},
    "accumulation": {"gradient_accumulation_steps": 2},
}


@pytest.mark.parametrize("kwargs", FEATURES.values(), ids=FEATURES.keys())
def test_apply_equals_rmsprop_on_hand_centralized_gradients(kwargs):
    steps = gradient_steps()
    centralized = [[centralize_by_hand(g) for g in grads] for grads in steps]
    gc = apply_steps(GCRMSprop(LEARNING_RATE, **kwargs), steps)
    assert_all_close(
        gc, apply_steps(keras.optimizers.RMSprop(LEARNING_RATE, **kwargs), centralized)
    )
    assert_some_differ(
        gc, apply_steps(keras.optimizers.RMSprop(LEARNING_RATE, **kwargs), steps)
    )


class RecordingGCRMSprop(GradientCentralization, keras.optimizers.RMSprop):
    """Keeps the gradients that reach `update_step`, after clipping. Over the
    unfused RMSprop: PyTorch's fused one updates all variables without calling
    `update_step`."""

    def update_step(self, gradient, variable, learning_rate):
        self.seen.append(keras.ops.convert_to_numpy(gradient))
        super().update_step(gradient, variable, learning_rate)


def clip_by_hand(grads, kwargs):
    if "clipvalue" in kwargs:
        return [np.clip(g, -kwargs["clipvalue"], kwargs["clipvalue"]) for g in grads]
    if "clipnorm" in kwargs:
        return [g * min(1, kwargs["clipnorm"] / np.linalg.norm(g)) for g in grads]
    norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    return [g * min(1, kwargs["global_clipnorm"] / norm) for g in grads]


@pytest.mark.parametrize(
    "kwargs",
    [{"clipvalue": 0.05}, {"clipnorm": 0.5}, {"global_clipnorm": 0.5}],
    ids=["clipvalue", "clipnorm", "global_clipnorm"],
)
def test_clipping_comes_after_centralization(kwargs):
    optimizer = RecordingGCRMSprop(LEARNING_RATE, **kwargs)
    optimizer.seen = []
    (grads,) = gradient_steps(1)
    apply_steps(optimizer, [grads])
    assert len(optimizer.seen) == len(SHAPES)
    centralize_then_clip = clip_by_hand([centralize_by_hand(g) for g in grads], kwargs)
    clip_then_centralize = [centralize_by_hand(g) for g in clip_by_hand(grads, kwargs)]
    # The two orders give different numbers on these gradients ...
    assert_some_differ(centralize_then_clip, clip_then_centralize)
    # ... and the optimizer applied the paper's order, so the bound holds.
    assert_all_close(optimizer.seen, centralize_then_clip)
    if "clipvalue" in kwargs:
        assert max(np.abs(g).max() for g in optimizer.seen) <= kwargs["clipvalue"]


def test_accumulation_steps_on_the_mean_centralized_gradient():
    steps = gradient_steps(2)
    optimizer = GCRMSprop(LEARNING_RATE, gradient_accumulation_steps=2)
    variables = kernel_variables(initial_values())
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in steps[0]], variables)
    after_first = [keras.ops.convert_to_numpy(v) for v in variables]
    for moved, start in zip(after_first, initial_values(), strict=True):
        np.testing.assert_array_equal(moved, start)
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in steps[1]], variables)
    mean = [centralize_by_hand((a + b) / 2) for a, b in zip(*steps)]
    assert_all_close(
        [keras.ops.convert_to_numpy(v) for v in variables],
        apply_steps(keras.optimizers.RMSprop(LEARNING_RATE), [mean]),
    )


def test_ema_tracks_the_weights_and_overwrites_them():
    momentum, frequency = 0.5, 3
    steps = gradient_steps(frequency)
    optimizer = GCRMSprop(
        LEARNING_RATE,
        use_ema=True,
        ema_momentum=momentum,
        ema_overwrite_frequency=frequency,
    )
    variables = kernel_variables(initial_values())
    # Expected: the weights follow RMSprop on centralized gradients; the EMA copy
    # starts at the weights after the first step and moves halfway toward them.
    plain = keras.optimizers.RMSprop(LEARNING_RATE)
    reference = kernel_variables(initial_values())
    average = None
    for step, grads in enumerate(steps, start=1):
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
        plain.apply(
            [keras.ops.convert_to_tensor(centralize_by_hand(g)) for g in grads],
            reference,
        )
        weights = [keras.ops.convert_to_numpy(v) for v in reference]
        average = (
            weights
            if average is None
            else [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
        )
        copies = [v for v in optimizer.variables if v.name.endswith("_average")]
        assert_all_close([keras.ops.convert_to_numpy(v) for v in copies], average)
        actual = [keras.ops.convert_to_numpy(v) for v in variables]
        if step < frequency:
            assert_all_close(actual, weights)
            if step > 1:  # After the first step the copy equals the weights.
                assert_some_differ(actual, average)
        else:  # Written back into the weights at the overwrite frequency.
            assert_all_close(actual, average)
            assert_some_differ(actual, weights)


def test_weight_decay_acts_on_the_weights_not_on_the_gradient():
    rate, decay = 0.1, 0.2
    # Constant within each output column: centralized, this gradient is zero, so
    # RMSprop's own step is zero and only the decoupled decay moves the weights.
    grads = [
        np.broadcast_to(np.arange(1, s[-1] + 1, dtype="float32"), s) for s in SHAPES
    ]
    result = apply_steps(GCRMSprop(rate, weight_decay=decay), [grads])
    for index, shape in enumerate(SHAPES):
        if centralize_by_hand(grads[index]).any():
            continue  # Not centralized: RMSprop moves it too.
        np.testing.assert_allclose(
            result[index], initial_values()[index] * (1 - rate * decay), rtol=1e-6
        )
    np.testing.assert_allclose(
        result[0], initial_values()[0] * (1 - rate * decay), rtol=1e-6
    )


def test_golden_values_three_steps():
    # A (3, 2) kernel; RMSprop(learning_rate=0.1, rho=0.9, epsilon=1e-7).
    # Column means of the gradients: step 1: (2, 0), step 2: (1, -1), step 3: (0, 0).
    # Centralized, every step's columns are (-1, 0, 1) * c: step 1 c = (1, 2),
    # step 2 c = (2, 1), step 3 c = (1, 1); the middle row's gradient is always 0
    # and it never moves. Velocity v = 0.1 g^2, then 0.09 g1^2 + 0.1 g2^2, then
    # 0.081 g1^2 + 0.09 g2^2 + 0.1 g3^2; each step subtracts 0.1 g / sqrt(v + eps),
    # so the top row moves by +0.1 (c1/sqrt(v1) + c2/sqrt(v2) + c3/sqrt(v3)):
    # column 0: 0.1 (1/sqrt(0.1) + 2/sqrt(0.49) + 1/sqrt(0.541))
    #   = 0.1 (3.162278 + 2.857143 + 1.359569) = 0.737899, from 1 to 1.737899;
    # column 1: 0.1 (2/sqrt(0.4) + 1/sqrt(0.46) + 1/sqrt(0.514))
    #   = 0.1 (3.162278 + 1.474420 + 1.394819) = 0.603152, from 2 to 2.603152;
    # the bottom row moves by as much the other way.
    start = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype="float32")
    steps = [
        [[1.0, -2.0], [2.0, 0.0], [3.0, 2.0]],
        [[-1.0, -2.0], [1.0, -1.0], [3.0, 0.0]],
        [[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]],
    ]
    (variable,) = kernel_variables([start])
    optimizer = GCRMSprop(learning_rate=0.1, rho=0.9, epsilon=1e-7)
    for grad in steps:
        optimizer.apply([keras.ops.convert_to_tensor(np.float32(grad))], [variable])
    expected = [[1.737899, 2.603152], [3.0, 4.0], [4.262101, 5.396848]]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(variable), expected, rtol=1e-6
    )


def test_variable_overwritten_with_its_gradient_is_never_centralized():
    values = np.arange(6, dtype="float32").reshape(3, 2)
    overwritten, kernel = kernel_variables([np.zeros((3, 2), "float32"), values])
    overwritten.overwrite_with_gradient = True
    optimizer = GCRMSprop(LEARNING_RATE)
    new_value = np.float32([[1.0, 5.0], [2.0, 7.0], [6.0, 9.0]])
    for _ in range(2):
        optimizer.apply(
            [
                keras.ops.convert_to_tensor(new_value),
                keras.ops.convert_to_tensor(values),
            ],
            [overwritten, kernel],
        )
        # Taken as its new value, exactly; the kernel beside it is centralized.
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(overwritten), new_value
        )
    expected = apply_steps_on(
        keras.optimizers.RMSprop(LEARNING_RATE),
        [values],
        [[centralize_by_hand(values)]] * 2,
    )
    assert_all_close([keras.ops.convert_to_numpy(kernel)], expected)


def apply_steps_on(optimizer, start, steps):
    variables = kernel_variables(start)
    for grads in steps:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    return [keras.ops.convert_to_numpy(v) for v in variables]


class RankTwoCentralizedRMSprop(keras.optimizers.RMSprop):
    """Reference for the float8 test: RMSprop fed column-centralized rank-2
    gradients. Its only rank-2 variable is the kernel; float8's scales and amax
    histories are rank 0 and 1."""

    def apply(self, grads, trainable_variables=None):
        grads = [
            g - keras.ops.mean(g, axis=0, keepdims=True) if len(g.shape) == 2 else g
            for g in grads
        ]
        return super().apply(grads, trainable_variables)


def fit_float8(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, name="dense")])
    model.layers[0].quantize("float8")
    # Not run_eagerly: on TensorFlow, float8 Dense training fails eagerly (Keras
    # 3.15: "too many values to unpack" in its custom gradient), with any optimizer.
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 6)).astype("float32") + 1.0
    model.fit(x, x[:, :4] * 2.0 + 3.0, batch_size=8, epochs=2, shuffle=False, verbose=0)
    weights = {
        w.path.split("/", 1)[1]: keras.ops.convert_to_numpy(w) for w in model.weights
    }
    assert all(np.isfinite(w).all() for w in weights.values())
    return weights


def test_fit_float8_dense():
    gc = fit_float8(GCRMSprop(LEARNING_RATE))
    assert gc["dense/kernel_scale"] != 1.0  # The scale took its new value.
    reference = fit_float8(RankTwoCentralizedRMSprop(LEARNING_RATE))
    plain = fit_float8(keras.optimizers.RMSprop(LEARNING_RATE))
    # The same as RMSprop with a centralized kernel gradient (scales and histories
    # included), and not the same as plain RMSprop.
    assert list(gc) == list(reference)
    for name in gc:
        np.testing.assert_allclose(gc[name], reference[name], rtol=1e-5, atol=1e-6)
    assert not np.allclose(
        gc["dense/kernel"], plain["dense/kernel"], rtol=1e-5, atol=1e-6
    )


def test_none_gradient_keeps_its_place():
    (grads,) = gradient_steps(1)
    grads[0] = None
    result = apply_steps(GCRMSprop(LEARNING_RATE), [grads])
    np.testing.assert_array_equal(result[0], initial_values()[0])
    expected = apply_steps(
        keras.optimizers.RMSprop(LEARNING_RATE),
        [[None] + [centralize_by_hand(g) for g in grads[1:]]],
    )
    assert_all_close(result[1:], expected[1:])


def test_nan_stays_in_its_own_layer():
    (grads,) = gradient_steps(1)
    grads[2][1, 2] = np.nan  # The dense kernel, output neuron 2.
    gc = apply_steps(GCRMSprop(LEARNING_RATE), [grads])
    plain = apply_steps(keras.optimizers.RMSprop(LEARNING_RATE), [grads])
    assert [np.isnan(v).any() for v in gc] == [np.isnan(v).any() for v in plain]
    # Within the layer the NaN reaches its output neuron's column, nothing more.
    assert np.isnan(gc[2][:, 2]).all() and not np.isnan(gc[2][:, :2]).any()


def test_conv_only_leaves_dense_kernels_alone():
    steps = gradient_steps()
    centralized = [
        [centralize_by_hand(g, conv_only=True) for g in grads] for grads in steps
    ]
    assert_all_close(
        apply_steps(GCRMSprop(LEARNING_RATE, gc_conv_only=True), steps),
        apply_steps(keras.optimizers.RMSprop(LEARNING_RATE), centralized),
    )


def test_excluded_variables_are_left_alone():
    steps = gradient_steps()
    # Patterns searched in each variable's path: var0's, and var2's.
    optimizer = GCRMSprop(LEARNING_RATE, gc_exclude_names=["^var0/", "var2"])
    variables = kernel_variables(initial_values(), prefix="var")
    for grads in steps:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    expected = apply_steps(
        keras.optimizers.RMSprop(LEARNING_RATE),
        [
            [g if i in (0, 2) else centralize_by_hand(g) for i, g in enumerate(grads)]
            for grads in steps
        ],
    )
    assert_all_close([keras.ops.convert_to_numpy(v) for v in variables], expected)


class CountingGCRMSprop(GCRMSprop):
    """GCRMSprop that counts how often it judges a variable's layout."""

    decided = 0

    def gc_layout(self, variable):
        self.decided += 1
        return super().gc_layout(variable)


@pytest.mark.parametrize("built", [True, False], ids=["built", "built-by-apply"])
def test_axes_are_decided_when_built_and_looked_up_in_apply(built):
    optimizer = CountingGCRMSprop(LEARNING_RATE)
    variables = kernel_variables(initial_values())
    if built:
        optimizer.build(variables)
    steps = gradient_steps(3)
    for grads in steps:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    # Once each, when built: by the first apply() if nothing built it before.
    assert optimizer.decided == len(variables)
    expected = apply_steps(
        keras.optimizers.RMSprop(LEARNING_RATE),
        [[centralize_by_hand(g) for g in grads] for grads in steps],
    )
    assert_all_close([keras.ops.convert_to_numpy(v) for v in variables], expected)


# Every optimizer of keras.optimizers, discovered, so that a new one is tested too.


def discovered_optimizers():
    return sorted(
        name
        for name, value in vars(keras.optimizers).items()
        if isinstance(value, type) and issubclass(value, keras.optimizers.Optimizer)
    )


# Reasons, by optimizer name, why the mixin cannot go into it.
NOT_MIXABLE = {"Optimizer": "abstract base class, it has no update step"}
# Wrappers of other optimizers: they get GCRMSprop inside rather than the mixin.
WRAPPERS = ("LossScaleOptimizer", "MultiOptimizer")
# Learning rates at which each optimizer's steps are large enough to compare
# (Adadelta's first steps are about learning_rate * sqrt(epsilon)).
# SGD and AdamW get momentum and a larger weight decay, to test those paths too.
OPTIMIZER_KWARGS = {
    "Adadelta": {"learning_rate": 1.0},
    "AdamW": {"learning_rate": LEARNING_RATE, "weight_decay": 0.05},
    "SGD": {"learning_rate": LEARNING_RATE, "momentum": 0.9},
}
# Which variables of SHAPES are centralized: not the bias, not the fan-in-1 kernel.
CENTRALIZED = [centralize_by_hand(g) is not g for g in gradient_steps(1)[0]]


def check_mixin(name):
    base = getattr(keras.optimizers, name)
    kwargs = OPTIMIZER_KWARGS.get(name, {"learning_rate": LEARNING_RATE})
    # The class Keras really uses: on PyTorch, its fused one where it has one.
    mixed = type(f"GC{name}", (GradientCentralization, type(base(**kwargs))), {})
    # Muon updates rank-2 variables with Muon and the others with AdamW, so the
    # conv kernel (rank 4) and the dense kernels (rank 2) exercise both paths.
    steps = gradient_steps(3)
    centralized = [[centralize_by_hand(g) for g in grads] for grads in steps]
    gc = apply_steps(mixed(**kwargs), steps)
    assert_all_close(gc, apply_steps(base(**kwargs), centralized))
    plain = apply_steps(base(**kwargs), steps)
    for index, flag in enumerate(CENTRALIZED):
        if flag:
            assert not np.allclose(gc[index], plain[index], rtol=1e-4, atol=1e-5), index
        else:
            np.testing.assert_allclose(gc[index], plain[index], rtol=1e-5, atol=1e-6)


def apply_steps_stateless(optimizer, steps):
    """`apply_steps` through `stateless_apply`, as the JAX trainer calls it."""
    variables = kernel_variables(initial_values())
    optimizer.build(variables)
    values = [v.value for v in variables]
    state = [v.value for v in optimizer.variables]
    for grads in steps:
        grads = [keras.ops.convert_to_tensor(g) for g in grads]
        values, state = optimizer.stateless_apply(state, grads, values)
    return [keras.ops.convert_to_numpy(v) for v in values]


def check_loss_scale_optimizer():
    # The gradients of a loss scaled by the initial scale 2**15, which
    # LossScaleOptimizer divides out before GCRMSprop centralizes them. On JAX,
    # LossScaleOptimizer.apply() on concrete variables fails in Keras 3.15 (a
    # tracer leaks out of its jax.lax.cond, with any inner optimizer); the JAX
    # trainer uses stateless_apply(), and so does this test there.
    apply = apply_steps_stateless if BACKEND == "jax" else apply_steps
    steps = gradient_steps()
    scaled = [[g * 2.0**15 for g in grads] for grads in steps]
    centralized = [[centralize_by_hand(g) for g in grads] for grads in steps]
    wrapped = keras.optimizers.LossScaleOptimizer(GCRMSprop(LEARNING_RATE))
    gc = apply(wrapped, scaled)
    assert_all_close(
        gc, apply_steps(keras.optimizers.RMSprop(LEARNING_RATE), centralized)
    )
    plain = keras.optimizers.LossScaleOptimizer(keras.optimizers.RMSprop(LEARNING_RATE))
    assert_some_differ(gc, apply(plain, scaled))


def check_multi_optimizer():
    # Two copies of SHAPES: the "gc" ones go to GCRMSprop, the "adam" ones to Adam.
    gc_optimizer, adam = GCRMSprop(LEARNING_RATE), keras.optimizers.Adam(LEARNING_RATE)
    multi = keras.optimizers.MultiOptimizer(
        lambda variable: gc_optimizer if variable.path.startswith("gc") else adam
    )
    variables = [
        variable
        for group in ("gc", "adam")
        for variable in kernel_variables(initial_values(), prefix=group)
    ]
    steps = gradient_steps()
    for grads in steps:
        multi.apply([keras.ops.convert_to_tensor(g) for g in grads * 2], variables)
    result = [keras.ops.convert_to_numpy(v) for v in variables]
    centralized = [[centralize_by_hand(g) for g in grads] for grads in steps]
    assert_all_close(
        result[: len(SHAPES)],
        apply_steps(keras.optimizers.RMSprop(LEARNING_RATE), centralized),
    )
    assert_all_close(
        result[len(SHAPES) :], apply_steps(keras.optimizers.Adam(LEARNING_RATE), steps)
    )
    assert_some_differ(
        result[: len(SHAPES)],
        apply_steps(keras.optimizers.RMSprop(LEARNING_RATE), steps),
    )


@pytest.mark.parametrize("name", discovered_optimizers())
def test_every_keras_optimizer(name):
    if name in NOT_MIXABLE:
        pytest.skip(NOT_MIXABLE[name])
    if name == "Muon" and BACKEND == "tensorflow" and keras_older_than("3.13.0"):
        # Plain keras.optimizers.Muon fails the same way: its update step looks up
        # its state by `variable.path`, and on TensorFlow it is handed the
        # underlying tf.Variable.
        keras_bug(
            "its Muon reads `variable.path` from the TensorFlow ResourceVariable "
            "that its update step gets, which has none (plain Muon fails too)",
            "3.13.0",
            "keras-team/keras#21793",
        )
    if name == "LossScaleOptimizer":
        check_loss_scale_optimizer()
    elif name == "MultiOptimizer":
        check_multi_optimizer()
    else:
        check_mixin(name)


def how_tested(name):
    if name in NOT_MIXABLE:
        return "not tested: " + NOT_MIXABLE[name]
    if name == "LossScaleOptimizer":
        return "wraps `GCRMSprop`"
    if name == "MultiOptimizer":
        return "`GCRMSprop` for some variables, `Adam` for the others"
    return "`GradientCentralization` mixed in"


def repository_file(name):
    return os.path.join(os.path.dirname(gradient_centralization.__file__), name)


def readme_compatibility_section():
    contributing = repository_file("CONTRIBUTING.md")
    section = open(contributing).read().split("\n### Every Keras optimizer\n")[1]
    return section.split("\n## ")[0]


def readme_compatibility_table():
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in readme_compatibility_section().splitlines()
        if line.startswith("|")
    ]
    header, rows = rows[0], rows[2:]
    assert header == ["Optimizer", "How it is tested", "TensorFlow", "JAX", "PyTorch"]
    return {row[0].strip("`"): row[1:] for row in rows}


def readme_table_keras_version():
    (version,) = re.findall(
        r"table was produced with Keras (\d+\.\d+\.\d+)",
        readme_compatibility_section(),
    )
    return version


def test_readme_compatibility_table_matches_the_tests():
    table, produced_with = readme_compatibility_table(), readme_table_keras_version()
    if keras.version() != produced_with:
        # Keras adds optimizers (3.10 has neither MultiOptimizer nor
        # ScheduleFreeAdamW), so the table holds for the version it was made with.
        pytest.skip(
            f"CONTRIBUTING.md's optimizer table was produced with Keras {produced_with}, "
            f"this is Keras {keras.version()}"
        )
    assert sorted(table) == discovered_optimizers()
    for name, (how, *backends) in table.items():
        assert how == how_tested(name), name
        assert backends == ["skipped" if name in NOT_MIXABLE else "passed"] * 3, name


def test_config_round_trip():
    optimizer = GCRMSprop(
        0.002, rho=0.8, clipnorm=1.0, gc_conv_only=True, gc_exclude_names=["embeddings"]
    )
    config = optimizer.get_config()
    assert config["gc_conv_only"] is True
    assert config["gc_exclude_names"] == ["embeddings"]
    restored = GCRMSprop.from_config(config)
    assert restored.get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is GCRMSprop and restored.get_config() == config


# Training through model.fit.


def small_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(1),
        ]
    )


def training_data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 8, 8, 2)).astype("float32")
    return x, (x.mean(axis=(1, 2, 3)) > 0).astype("float32")


def fit_weights(optimizer, jit_compile=False, build=small_model, epochs=2):
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    x, y = training_data()
    model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    return weights


@pytest.mark.parametrize("jit_compile", [False, True], ids=["eager-graph", "jit"])
def test_fit_trains_differently_from_rmsprop(jit_compile):
    if jit_compile and BACKEND == "torch" and keras_older_than("3.12.0"):
        import torch

        if version_tuple(torch.__version__) >= (2, 8, 0):
            # Plain RMSprop fails the same way, in torch.compile of Keras' loss.
            keras_bug(
                f"fit(jit_compile=True) fails in torch.compile of torch "
                f"{torch.__version__} (2.8 and later), with any optimizer "
                "(plain RMSprop too)",
                "3.12.0",
                "keras-team/keras#21661",
            )
    plain = fit_weights(keras.optimizers.RMSprop(LEARNING_RATE), jit_compile)
    # Control: the comparison is deterministic, so a difference means GC acted.
    assert_all_close(
        fit_weights(keras.optimizers.RMSprop(LEARNING_RATE), jit_compile), plain
    )
    assert_some_differ(fit_weights(GCRMSprop(LEARNING_RATE), jit_compile), plain)


FIT_FEATURES = [
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "weight_decay",
    "ema",
    "accumulation",
]


@pytest.mark.parametrize(
    "kwargs", [FEATURES[name] for name in FIT_FEATURES], ids=FIT_FEATURES
)
def test_fit_with_training_features(kwargs):
    plain = fit_weights(keras.optimizers.RMSprop(LEARNING_RATE, **kwargs))
    assert_some_differ(fit_weights(GCRMSprop(LEARNING_RATE, **kwargs)), plain)


@pytest.fixture
def mixed_float16():
    keras.config.set_dtype_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy("float32")


def test_fit_with_mixed_precision(mixed_float16):
    keras.utils.set_random_seed(0)
    model = small_model()
    model.compile(optimizer=GCRMSprop(LEARNING_RATE), loss="mse")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert type(model.optimizer.inner_optimizer) is GCRMSprop
    gc = fit_weights(GCRMSprop(LEARNING_RATE))
    plain = fit_weights(keras.optimizers.RMSprop(LEARNING_RATE))
    assert all(w.dtype == np.float32 for w in gc)
    assert_some_differ(gc, plain)


def test_save_and_load_without_custom_objects(tmp_path):
    keras.utils.set_random_seed(0)
    model = small_model()
    model.compile(
        optimizer=GCRMSprop(
            LEARNING_RATE, gc_conv_only=True, gc_exclude_names=["embeddings"]
        ),
        loss="mse",
    )
    x, y = training_data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer) is GCRMSprop
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert_all_close(loaded.get_weights(), model.get_weights())
    # The optimizer's state came back too: one more epoch gives the same weights.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert_all_close(loaded.get_weights(), model.get_weights())


def copyable_block():
    """The lines README tells users to copy, cut out of the example script."""
    source = open(gradient_centralization.__file__).read()
    start = source.index("ATTENTION_KERNELS = ")
    end = source.index('"""', source.index("class GCRMSprop("))
    end = source.index('"""', end + 3) + 3
    return source[start:end]


def copyable_companion():
    """The companion's lines README tells users to copy below the block."""
    source = open(repository_file("gc_layouts.py")).read()
    return source[source.index("def layout_of(") :].rstrip("\n")


# What README shows to copy, and the global names each part may use unbound.
COPYABLE = {
    "block": (lambda: "import re\n\nimport keras\n\n\n" + copyable_block(), set()),
    "companion": (copyable_companion, {"incoming_axes", "keras"}),
}


@pytest.mark.parametrize("part", COPYABLE)
def test_copyable_code_uses_public_keras_api_only(part):
    text, needs = COPYABLE[part]
    tree = ast.parse(text())
    private = sorted(
        {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not (node.attr.startswith("__") and node.attr.endswith("__"))
        }
    )
    assert private == [], f"private attributes used in the copyable code: {private}"
    # The block needs no global name it does not import; the companion, pasted
    # below it, needs the block's `keras` and `incoming_axes`.
    bound = {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
    }
    bound |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    bound |= {
        n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))
    }
    bound |= {
        alias.asname or alias.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import)
        for alias in n.names
    }
    used = {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    assert used - bound - set(dir(builtins)) == needs
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]


@pytest.mark.parametrize("part", COPYABLE)
def test_readme_shows_the_copyable_code_as_it_is(part):
    """README's code to copy is the example's block, with its imports, and the
    companion's functions."""
    readme = open(repository_file("README.md")).read()
    text, _ = COPYABLE[part]
    assert "```python\n" + text() + "\n```" in readme


def test_copyable_code_trains_on_its_own(tmp_path):
    """The block and the companion, pasted into one file, give this repository's
    optimizer, and the companion's layouts."""
    path = tmp_path / "my_optimizers.py"
    parts = [text() for text, _ in COPYABLE.values()]
    path.write_text("\n\n\n".join(parts) + "\n")
    namespace = {"__name__": "my_optimizers"}
    # The copy registers its own GCRMSprop under the same name: restore ours after.
    registered = dict(keras.saving.get_custom_objects())
    try:
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        copied = namespace["GCRMSprop"]
        assert copied is not GCRMSprop
        gc = fit_weights(copied(LEARNING_RATE))
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        axes = namespace["incoming_axes_of"](model)
    finally:
        keras.saving.get_custom_objects().clear()
        keras.saving.get_custom_objects().update(registered)
    assert axes == [
        {"shape": [3, 2], "axes": [0], "conv": False},
        {"shape": [2], "axes": [], "conv": False},
    ]
    assert_all_close(gc, fit_weights(GCRMSprop(LEARNING_RATE)))
    assert_some_differ(gc, fit_weights(keras.optimizers.RMSprop(LEARNING_RATE)))


# TensorFlow only.

tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="TensorFlow feature"
)


@tensorflow_only
def test_sparse_embedding_gradients_stay_sparse():
    import tensorflow as tf

    embedding = keras.layers.Embedding(10, 4)
    embedding.build((None,))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(embedding(tf.constant([1, 3])))
    (grad,) = tape.gradient(loss, embedding.trainable_variables)
    assert type(grad).__name__ == "IndexedSlices"
    assert gradient_centralization.centralize_gradient(grad, (0,)) is grad
    optimizer, plain = GCRMSprop(LEARNING_RATE), keras.optimizers.RMSprop(LEARNING_RATE)
    start = embedding.embeddings.numpy()
    optimizer.apply([grad], embedding.trainable_variables)
    after_gc = embedding.embeddings.numpy()
    embedding.embeddings.assign(start)
    plain.apply([grad], embedding.trainable_variables)
    np.testing.assert_allclose(after_gc, embedding.embeddings.numpy())
    # Rows that were not looked up did not move.
    np.testing.assert_array_equal(
        np.delete(after_gc, [1, 3], axis=0), np.delete(start, [1, 3], axis=0)
    )


@tensorflow_only
def test_mirrored_strategy_matches_one_device():
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, "tests/conftest.py should have made two CPU devices"
    single = fit_weights(GCRMSprop(LEARNING_RATE))
    with tf.distribute.MirroredStrategy(devices).scope():
        mirrored = fit_weights(GCRMSprop(LEARNING_RATE))
    for a, b in zip(mirrored, single, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_gcrmsprop_keeps_the_class_keras_uses_for_rmsprop():
    """On PyTorch, Keras uses a fused RMSprop for `RMSprop()` but not for its
    subclasses: GCRMSprop extends the class Keras really uses."""
    used = type(keras.optimizers.RMSprop())
    assert used in type(GCRMSprop()).__mro__
    assert (used is keras.optimizers.RMSprop) == (BACKEND != "torch")
