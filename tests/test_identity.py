"""Each variable gets its own axes, whatever its path: with repeated layer names,
for some of the variables, through `fit` on every backend, and after a save and
`load_model` (which renames the weights of Sequential and subclassed models).

The reference is `CentralizedByOrderSGD`: plain SGD that centralizes the gradient of
the i-th variable it is built with over the i-th axes of a list written here from
each layer's class (`reference_axes`), never from a path. tests/test_backends.py
runs this file again under KERAS_BACKEND=jax and torch.
"""

import re

import keras
import numpy as np
import pytest
from keras import layers

from gc_layouts import incoming_axes_of
from gradient_centralization import GradientCentralization

GCSGD = keras.saving.register_keras_serializable("test_identity")(
    type("GCSGD", (GradientCentralization, keras.optimizers.SGD), {})
)
LEARNING_RATE = 0.05


def reference_axes(model):
    """For each trainable variable of `model`, in order, the axes of each output
    neuron's incoming weights, from the class of the layer that owns it (`()`: a
    bias). Covers the layers the models below use."""
    axes = {}
    for layer in model._flatten_layers():
        for weight in layer._trainable_variables:  # The layer's own weights.
            rank, name = len(weight.shape), weight.name
            if rank < 2:
                axes[id(weight)] = ()
            elif isinstance(layer, layers.Conv1DTranspose):  # (k, outputs, inputs)
                axes[id(weight)] = (0, 2)
            elif isinstance(layer, layers.EinsumDense):  # Letters not in the output.
                operands, output = layer.equation.split("->")
                kernel = operands.split(",")[1]
                axes[id(weight)] = tuple(
                    i for i, letter in enumerate(kernel) if letter not in output
                )
            elif isinstance(layer, (layers.Dense, layers.Conv1D)) and name == "kernel":
                axes[id(weight)] = tuple(range(rank - 1))  # (inputs..., outputs)
            else:
                raise AssertionError(f"no reference for {layer} {name}")
    return [axes[id(v)] for v in model.trainable_variables]


class CentralizedByOrderSGD(keras.optimizers.SGD):
    """SGD that centralizes the i-th gradient over `axes[i]`: the reference."""

    def __init__(self, axes, **kwargs):
        super().__init__(**kwargs)
        self.reference = axes

    def apply(self, grads, trainable_variables=None):
        grads = [
            g if not a else g - keras.ops.mean(g, axis=a, keepdims=True)
            for g, a in zip(grads, self.reference)
        ]
        return super().apply(grads, trainable_variables)


register = keras.saving.register_keras_serializable("test_identity")


@register
class Twin(keras.Model):
    """Two layers under one name: both weights' paths are `twin/proj/kernel`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(8, name="proj")
        self.conv = layers.Conv1D(4, 3, name="proj")
        self.head = layers.Dense(1)

    def call(self, x):
        return self.head(layers.Flatten()(self.conv(self.dense(x))))


@register
class Block(keras.Layer):
    """Holds a Conv1D or a Dense named `proj`."""

    def __init__(self, kind, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        conv = kind == "conv"
        self.proj = (
            layers.Conv1D(4, 3, name="proj") if conv else layers.Dense(8, name="proj")
        )

    def call(self, x):
        return self.proj(x)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind}


@register
class Nested(keras.Model):
    """Two nested blocks, each holding a layer named `proj`: distinct paths while
    training (`nested/block/proj/kernel`), one path after a reload."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = Block("conv")
        self.second = Block("dense")
        self.head = layers.Dense(1)

    def call(self, x):
        return self.head(layers.Flatten()(self.second(self.first(x))))


def user_named_layers():
    """Layers whose names say nothing of their layout."""
    return [
        layers.Conv1DTranspose(4, 3, name="up"),
        layers.EinsumDense("abc,cde->abde", output_shape=(8, 4, 2), name="proj"),
        layers.Flatten(),
        layers.Dense(1, name="head"),
    ]


def sequential():
    return keras.Sequential([keras.Input((6, 5)), *user_named_layers()])


def functional():
    inputs = keras.Input((6, 5))
    x = inputs
    for layer in user_named_layers():
        x = layer(x)
    return keras.Model(inputs, x)


@register
class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.stack = user_named_layers()

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return x


MODELS = {
    "twin": lambda: Twin(name="twin"),
    "nested": lambda: Nested(name="nested"),
    "sequential": sequential,
    "functional": functional,
    "subclassed": lambda: Subclassed(name="subclassed"),
}
# With user names, the Conv1DTranspose and EinsumDense layouts need the companion.
NEEDS_THE_COMPANION = ("sequential", "functional", "subclassed")


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 6, 5)).astype("float32"), rng.normal(size=(16, 1))


def built(name):
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    model(data()[0][:1])
    return model


def fit(model, optimizer, epochs=2):
    """Compiles `model` with `optimizer` unless it is `None`, then fits it."""
    if optimizer is not None:
        model.compile(optimizer=optimizer, loss="mse")
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, shuffle=False)
    return [keras.ops.convert_to_numpy(w) for w in model.get_weights()]


def reference_fit(model, epochs=2):
    """The same model's weights trained by the reference."""
    reference = CentralizedByOrderSGD(
        reference_axes(model), learning_rate=LEARNING_RATE
    )
    return fit(model, reference, epochs)


def assert_same(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def gc_sgd(model, companion):
    axes = incoming_axes_of(model) if companion else None
    return GCSGD(learning_rate=LEARNING_RATE, gc_incoming_axes=axes)


# (model, with the companion's layouts): user-named transposed and einsum layers
# need them; by name they are documented to go wrong.
CASES = [
    (n, c) for n in MODELS for c in (False, True) if c or n not in NEEDS_THE_COMPANION
]
CASE_IDS = [f"{n}-{'companion' if c else 'by-name'}" for n, c in CASES]


@pytest.mark.parametrize("name, companion", CASES, ids=CASE_IDS)
def test_fit_centralizes_each_variable_over_its_own_axes(name, companion):
    """Every step from the first: the reference's weights, repeated paths or not."""
    model = built(name)
    if name == "twin":
        paths = [v.path for v in model.trainable_variables]
        assert paths[0] == paths[2] == "twin/proj/kernel"
    trained = fit(model, gc_sgd(model, companion))
    assert_same(trained, reference_fit(built(name)))


@pytest.mark.parametrize("name, companion", CASES, ids=CASE_IDS)
def test_training_on_after_load_model_keeps_each_variables_axes(
    name, companion, tmp_path
):
    """Trained, saved, loaded (paths change for Sequential and subclassed models),
    trained on: the weights the reference reaches from the same saved weights."""
    model = built(name)
    optimizer = gc_sgd(model, companion)
    fit(model, optimizer, epochs=1)
    before = optimizer.get_config()["gc_incoming_axes"]
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is GCSGD
    assert loaded.optimizer.get_config()["gc_incoming_axes"] == before
    trained_on = fit(loaded, None)
    # The reference, from the weights that were saved.
    reference = built(name)
    reference.set_weights(
        keras.models.load_model(tmp_path / "model.keras").get_weights()
    )
    assert_same(trained_on, reference_fit(reference))


def test_load_model_renames_the_weights_this_suite_relies_on(tmp_path):
    """Why the decisions follow the order of the variables, not their paths."""
    model = built("sequential")
    fit(model, gc_sgd(model, companion=True), epochs=1)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert re.fullmatch(r"sequential(_\d+)?/up/kernel", model.layers[0].kernel.path)
    assert loaded.layers[0].kernel.path == "up/kernel"
    paths = [v.path for v in built("nested").trainable_variables]
    assert (
        len([p for p in paths if re.fullmatch(r"nested/block(_\d+)?/proj/kernel", p)])
        == 2
    )


def test_layouts_that_do_not_match_the_variables_raise_naming_one():
    model = built("functional")
    layouts = incoming_axes_of(model)
    with pytest.raises(ValueError, match=r"no \[3, 4, 5\] layout for up/kernel"):
        GCSGD(gc_incoming_axes=layouts[::-1]).build(model.trainable_variables)
    with pytest.raises(ValueError, match=r"no \[3, 4, 5\] layout for up/kernel"):
        GCSGD(gc_incoming_axes=layouts[:4]).build(model.trainable_variables)
    # The companion called on a model not built yet lists no layout: not a guess.
    unbuilt = incoming_axes_of(Subclassed())
    assert unbuilt == []
    with pytest.raises(ValueError, match=r"no \[3, 4, 5\] layout for up/kernel"):
        GCSGD(gc_incoming_axes=unbuilt).build(model.trainable_variables)


def test_some_of_the_variables_get_their_own_axes():
    """MultiOptimizer hands an optimizer some of the variables it was built with;
    here the Dense and the Conv1D kernels share a path."""
    model = built("twin")
    variables = model.trainable_variables
    optimizer = GCSGD(learning_rate=1.0)
    optimizer.build(variables)
    some = [variables[2], variables[0]]  # The Conv1D kernel, then the Dense one.
    rng = np.random.default_rng(1)
    grads = [(rng.normal(size=v.shape) + 0.5).astype("float32") for v in some]
    before = [keras.ops.convert_to_numpy(v) for v in some]
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], some)
    for variable, grad, start, axes in zip(some, grads, before, [(0, 1), (0,)]):
        applied = start - keras.ops.convert_to_numpy(variable)
        want = grad - grad.mean(axis=axes, keepdims=True)
        np.testing.assert_allclose(applied, want, rtol=1e-5, atol=1e-5)


def test_variables_from_a_generator_are_updated():
    variable = keras.Variable(np.ones((3, 2), "float32"), name="kernel")
    grad = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]], "float32")
    grads = [keras.ops.convert_to_tensor(grad)]
    GCSGD(learning_rate=1.0).apply(grads, (v for v in [variable]))
    # Centralized over the inputs (axis 0), then applied.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(variable), [[2.0, 1.0], [1.0, 1.0], [0.0, 1.0]]
    )


def test_a_string_of_names_to_exclude_is_one_pattern():
    assert GCSGD(gc_exclude_names="head").gc_exclude_names == ["head"]
    model = built("functional")
    optimizer = GCSGD(gc_exclude_names="(^|/)head/")
    optimizer.build(model.trainable_variables)
    axes = [layout["axes"] for layout in optimizer.get_config()["gc_incoming_axes"]]
    # By name, up/kernel and proj/kernel outputs-last; the head's kernel excluded.
    # Read as characters, "/" would exclude them all.
    assert axes == [[0, 1], [], [0, 1], [], []]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a raw tf.Variable")
def test_a_raw_tf_variable_is_updated_as_by_the_parent():
    import tensorflow as tf

    variable = tf.Variable(np.ones((3, 2), "float32"))
    GCSGD(learning_rate=1.0).apply_gradients([(tf.ones((3, 2)), variable)])
    np.testing.assert_allclose(variable.numpy(), np.zeros((3, 2)))
