"""GCRMSprop and the GradientCentralization mixin on whichever backend is active.

tests/test_backends.py runs this file again under KERAS_BACKEND=jax and torch.
"""


import keras
import numpy as np
import pytest

import gradient_centralization
from gradient_centralization import GCRMSprop, GradientCentralization

BACKEND = keras.backend.backend()
LEARNING_RATE = 0.01

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


def apply_steps(optimizer, steps):
    variables = [keras.Variable(value) for value in initial_values()]
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
    assert any(not np.allclose(a, e, rtol=1e-5, atol=1e-6) for a, e in zip(actual, expected))


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
    assert_all_close(gc, apply_steps(keras.optimizers.RMSprop(LEARNING_RATE, **kwargs), centralized))
    assert_some_differ(gc, apply_steps(keras.optimizers.RMSprop(LEARNING_RATE, **kwargs), steps))


class RecordingGCRMSprop(GCRMSprop):
    """Keeps the gradients that reach `update_step`, after clipping."""

    def update_step(self, gradient, variable, learning_rate):
        self.seen.append(keras.ops.convert_to_numpy(gradient))
        super().update_step(gradient, variable, learning_rate)


@pytest.mark.parametrize("kwargs", [{"clipvalue": 0.05}, {"clipnorm": 0.5}])
def test_clipping_bounds_hold_on_the_applied_gradient(kwargs):
    optimizer = RecordingGCRMSprop(LEARNING_RATE, **kwargs)
    optimizer.seen = []
    apply_steps(optimizer, gradient_steps(1))
    for grad in optimizer.seen:
        if "clipvalue" in kwargs:
            assert np.abs(grad).max() <= kwargs["clipvalue"] + 1e-7
        else:
            assert np.linalg.norm(grad) <= kwargs["clipnorm"] * (1 + 1e-5)


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
    centralized = [[centralize_by_hand(g, conv_only=True) for g in grads] for grads in steps]
    assert_all_close(
        apply_steps(GCRMSprop(LEARNING_RATE, gc_conv_only=True), steps),
        apply_steps(keras.optimizers.RMSprop(LEARNING_RATE), centralized),
    )


def test_excluded_variables_are_left_alone():
    steps = gradient_steps()
    optimizer = GCRMSprop(LEARNING_RATE)
    variables = [keras.Variable(v, name=f"var{i}") for i, v in enumerate(initial_values())]
    optimizer.exclude_from_gradient_centralization(var_list=[variables[0]], var_names=["var2"])
    for grads in steps:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    expected = apply_steps(
        keras.optimizers.RMSprop(LEARNING_RATE),
        [[g if i in (0, 2) else centralize_by_hand(g) for i, g in enumerate(grads)] for grads in steps],
    )
    assert_all_close([keras.ops.convert_to_numpy(v) for v in variables], expected)


class GCAdam(GradientCentralization, keras.optimizers.Adam):
    pass


class GCSGD(GradientCentralization, keras.optimizers.SGD):
    pass


class GCAdamW(GradientCentralization, keras.optimizers.AdamW):
    pass


@pytest.mark.parametrize(
    "gc_class, base_class, kwargs",
    [
        (GCAdam, keras.optimizers.Adam, {}),
        (GCSGD, keras.optimizers.SGD, {"momentum": 0.9}),
        (GCAdamW, keras.optimizers.AdamW, {"weight_decay": 0.05}),
    ],
    ids=["Adam", "SGD-momentum", "AdamW"],
)
def test_mixin_works_with_other_optimizers(gc_class, base_class, kwargs):
    steps = gradient_steps()
    centralized = [[centralize_by_hand(g) for g in grads] for grads in steps]
    gc = apply_steps(gc_class(LEARNING_RATE, **kwargs), steps)
    assert_all_close(gc, apply_steps(base_class(LEARNING_RATE, **kwargs), centralized))
    assert_some_differ(gc, apply_steps(base_class(LEARNING_RATE, **kwargs), steps))


def test_config_round_trip():
    optimizer = GCRMSprop(0.002, rho=0.8, clipnorm=1.0, gc_conv_only=True, gc_exclude_names=["embeddings"])
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
    plain = fit_weights(keras.optimizers.RMSprop(LEARNING_RATE), jit_compile)
    # Control: the comparison is deterministic, so a difference means GC acted.
    assert_all_close(fit_weights(keras.optimizers.RMSprop(LEARNING_RATE), jit_compile), plain)
    assert_some_differ(fit_weights(GCRMSprop(LEARNING_RATE), jit_compile), plain)


@pytest.mark.parametrize(
    "kwargs",
    [FEATURES[name] for name in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "ema", "accumulation")],
    ids=["clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "ema", "accumulation"],
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
        optimizer=GCRMSprop(LEARNING_RATE, gc_conv_only=True, gc_exclude_names=["embeddings"]),
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
    start = source.index("def centralize_gradient(")
    end = source.index('"""', source.index("class GCRMSprop("))
    end = source.index('"""', end + 3) + 3
    return source[start:end]


def test_copyable_block_trains_on_its_own(tmp_path):
    block = copyable_block()
    path = tmp_path / "my_optimizers.py"
    path.write_text("import re\n\nimport keras\n\n\n" + block + "\n")
    namespace = {"__name__": "my_optimizers"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    plain = fit_weights(keras.optimizers.RMSprop(LEARNING_RATE))
    assert_some_differ(fit_weights(namespace["GCRMSprop"](LEARNING_RATE)), plain)


# TensorFlow only.

tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow feature")


@tensorflow_only
def test_sparse_embedding_gradients_stay_sparse():
    import tensorflow as tf

    embedding = keras.layers.Embedding(10, 4)
    embedding.build((None,))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(embedding(tf.constant([1, 3])))
    (grad,) = tape.gradient(loss, embedding.trainable_variables)
    assert type(grad).__name__ == "IndexedSlices"
    assert gradient_centralization.centralize_gradient(grad) is grad
    optimizer, plain = GCRMSprop(LEARNING_RATE), keras.optimizers.RMSprop(LEARNING_RATE)
    start = embedding.embeddings.numpy()
    optimizer.apply([grad], embedding.trainable_variables)
    after_gc = embedding.embeddings.numpy()
    embedding.embeddings.assign(start)
    plain.apply([grad], embedding.trainable_variables)
    np.testing.assert_allclose(after_gc, embedding.embeddings.numpy())
    # Rows that were not looked up did not move.
    np.testing.assert_array_equal(np.delete(after_gc, [1, 3], axis=0), np.delete(start, [1, 3], axis=0))


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
