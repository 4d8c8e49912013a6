"""Which kernels the copyable block centralizes, and over which axes, in the models
Keras users train: keras.applications models, a decoder with `Conv2DTranspose`, a
transformer block, and the same built-in layers under names the user chose.

The expected axes come from each layer's class, not from variable paths (which is
how the block decides): a rule that centralizes a depthwise, transposed, attention
or embedding kernel along the wrong axes fails here. tests/test_backends.py runs
this file again under KERAS_BACKEND=jax and torch.
"""

import re

import keras
import numpy as np
import pytest
from keras import layers

from gc_layouts import incoming_axes_of
from gradient_centralization import (
    GCRMSprop,
    GradientCentralization,
    centralize_gradient,
    incoming_axes,
)

GCSGD = type("GCSGD", (GradientCentralization, keras.optimizers.SGD), {})


def all_but(rank, axis):
    return tuple(a for a in range(rank) if a != axis % rank)


def true_axes(model):
    """Variable path -> the axes of each output neuron's incoming weights, from the
    class of the layer that owns the variable; `None` for a table of embeddings.
    """
    expected = {}

    def add(variable, axes):
        expected[variable.path] = axes

    def visit(layer):
        rank = lambda variable: len(variable.shape)  # noqa: E731
        if isinstance(layer, layers.MultiHeadAttention):
            for dense in (layer.query_dense, layer.key_dense, layer.value_dense):
                add(dense.kernel, (0,))  # (inputs, heads, head size)
                add(dense.bias, None)  # (heads, head size): a bias, no inputs
            add(layer.output_dense.kernel, (0, 1))  # (heads, head size, outputs)
        elif isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
            add(layer.kernel, tuple(range(rank(layer.kernel) - 2)))  # the window
        elif isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
            depthwise, pointwise = layer.depthwise_kernel, layer.pointwise_kernel
            add(depthwise, tuple(range(rank(depthwise) - 2)))
            add(pointwise, all_but(rank(pointwise), -1))
        elif isinstance(
            layer,
            (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose),
        ):
            add(layer.kernel, all_but(rank(layer.kernel), -2))  # (k..., out, in)
        elif isinstance(layer, layers.Embedding):
            add(layer.embeddings, None)
        elif isinstance(
            layer, (layers.Dense, layers.Conv1D, layers.Conv2D, layers.Conv3D)
        ):
            add(layer.kernel, all_but(rank(layer.kernel), -1))
        for sublayer in getattr(layer, "layers", []):
            visit(sublayer)

    for layer in model.layers:
        visit(layer)
    return expected


def centralized_by_truth(grad, axes):
    if not axes or all(grad.shape[a] == 1 for a in axes):
        return grad
    return grad - grad.mean(axis=axes, keepdims=True)


def applied_gradients(model, through_apply=True, **gc_kwargs):
    """The gradients GC-SGD at learning rate 1 applies to random gradients with a
    clearly non-zero mean, by variable path, with those random gradients. Without
    `through_apply`, the block's own choice of axes and centralization, with no
    update: the same gradients, faster for large models.
    """
    variables = model.trainable_variables
    rng = np.random.default_rng(0)
    grads = [(rng.normal(size=v.shape) + 0.5).astype("float32") for v in variables]
    optimizer = GCSGD(learning_rate=1.0, **gc_kwargs)
    tensors = [keras.ops.convert_to_tensor(g) for g in grads]
    if through_apply:
        before = [keras.ops.convert_to_numpy(v) for v in variables]
        optimizer.apply(tensors, variables)
        after = [b - keras.ops.convert_to_numpy(v) for v, b in zip(variables, before)]
    else:
        optimizer.build(variables)
        decided = [
            layout["axes"] for layout in optimizer.get_config()["gc_incoming_axes"]
        ]
        after = [
            keras.ops.convert_to_numpy(centralize_gradient(t, tuple(axes)))
            for axes, t in zip(decided, tensors)
        ]
    paths = [v.path for v in variables]
    return dict(zip(paths, after)), dict(zip(paths, grads))


def wrongly_applied(model, left_alone=(), through_apply=True, **gc_kwargs):
    """The paths whose applied gradient is not the one they should get: centralized
    over their true axes, or, for vectors, embeddings and `left_alone`, untouched.
    Also the paths that should be, and were, centralized.
    """
    expected = true_axes(model)
    applied, raw = applied_gradients(model, through_apply, **gc_kwargs)
    wrong, centralized = [], []
    for path, grad in raw.items():
        if grad.ndim < 2 or path in left_alone:
            want = grad
        else:
            assert path in expected, f"{path}: a kernel of a layer the test misses"
            want = centralized_by_truth(grad, expected[path])
        if not np.allclose(applied[path], want, rtol=1e-4, atol=1e-4):
            wrong.append(path)
        elif want is not grad:
            centralized.append(path)
    return wrong, centralized


def check_model(model, left_alone=(), through_apply=True, **gc_kwargs):
    """No kernel centralized along the wrong axes; returns those centralized."""
    wrong, centralized = wrongly_applied(model, left_alone, through_apply, **gc_kwargs)
    assert wrong == []
    return centralized


def layer_of(model, cls):
    """The model's one layer of class `cls` (default names are numbered)."""
    (layer,) = [layer for layer in model.layers if type(layer) is cls]
    return layer


def kernels_of(model, *classes):
    return [layer.kernel.path for layer in model.layers if type(layer) in classes]


APPLICATIONS = {
    "EfficientNetB0": (32, 32, 3),
    "MobileNetV3Small": (32, 32, 3),
    "Xception": (71, 71, 3),
    "ConvNeXtTiny": (32, 32, 3),
}


@pytest.mark.parametrize("name", APPLICATIONS)
def test_keras_applications(name):
    model = getattr(keras.applications, name)(
        weights=None, input_shape=APPLICATIONS[name], classes=10
    )
    # Through the block's choice of axes, not a whole update: JAX compiles each op
    # of an eager update for each of hundreds of shapes.
    centralized = check_model(model, through_apply=False)
    # The plain convolutions and the dense kernels are centralized, all of them.
    plain = kernels_of(model, layers.Conv2D, layers.Dense)
    assert plain and set(plain) <= set(centralized)


def decoder(names=None):
    names = names or {}
    inputs = keras.Input((4, 4, 8))
    x = layers.Conv2DTranspose(16, 3, strides=2, padding="same", name=names.get("up"))(
        inputs
    )
    x = layers.Conv2D(8, 3, padding="same", name=names.get("conv"))(x)
    x = layers.DepthwiseConv2D(3, padding="same", name=names.get("depthwise"))(x)
    x = layers.SeparableConv2D(4, 3, name=names.get("separable"))(x)
    x = layers.Conv1DTranspose(4, 3, name=names.get("up1d"))(layers.Reshape((-1, 4))(x))
    return keras.Model(inputs, layers.Dense(3, name=names.get("head"))(x))


def transformer_block(names=None):
    names = names or {}
    tokens = keras.Input((6,), dtype="int32")
    x = layers.Embedding(20, 8, name=names.get("embedding"))(tokens)
    attention = layers.MultiHeadAttention(2, 4, name=names.get("attention"))
    x = layers.LayerNormalization(name=names.get("norm"))(x + attention(x, x))
    x = layers.Dense(16, activation="relu", name=names.get("ffn"))(x)
    return keras.Model(tokens, layers.Dense(8, name=names.get("out"))(x))


def test_decoder_with_transposed_convolutions():
    model = decoder()
    centralized = check_model(model)
    transposed = kernels_of(model, layers.Conv2DTranspose, layers.Conv1DTranspose)
    assert len(transposed) == 2 and set(transposed) <= set(centralized)
    assert set(kernels_of(model, layers.Conv2D, layers.Dense)) <= set(centralized)


def test_transformer_block():
    model = transformer_block()
    centralized = check_model(model)
    attention = layer_of(model, layers.MultiHeadAttention)
    assert attention.query_dense.kernel.path in centralized
    assert attention.output_dense.kernel.path in centralized
    assert not [path for path in centralized if path.endswith("embeddings")]
    assert set(kernels_of(model, layers.Dense)) <= set(centralized)


USER_NAMES = {
    "up": "upsample",
    "conv": "mix",
    "depthwise": "spatial",
    "separable": "sep",
    "up1d": "widen",
    "head": "logits",
    "embedding": "tokens",
    "attention": "attn",
    "norm": "ln",
    "ffn": "mlp",
    "out": "proj",
}
# The exclusion step for layers whose kind their name no longer tells.
USER_STEP = ["(^|/)upsample/", "(^|/)spatial/", "(^|/)widen/"]


@pytest.mark.parametrize("build", [decoder, transformer_block])
def test_user_named_layers_with_the_exclusion_step(build):
    model = build(USER_NAMES)
    excluded = [
        p
        for p in true_axes(model)
        if p.split("/")[0] in ("upsample", "spatial", "widen")
        # By name, the query, key and value of an attention layer that is not
        # called multi_head_attention are left alone: its layout is unknown.
        or p in ("attn/query/kernel", "attn/key/kernel", "attn/value/kernel")
    ]
    centralized = check_model(model, left_alone=excluded, gc_exclude_names=USER_STEP)
    assert not set(excluded) & set(centralized)
    # Names Keras fixes whatever the layer's name: separable, attention output.
    for path in ("sep/depthwise_kernel", "attn/attention_output/kernel"):
        if path in true_axes(model):
            assert path in centralized
    assert set(kernels_of(model, layers.Conv2D, layers.Dense)) <= set(centralized)


@pytest.mark.parametrize("names", [None, USER_NAMES], ids=["default", "user"])
@pytest.mark.parametrize("build", [decoder, transformer_block])
def test_layouts_read_off_the_layers_centralize_every_kernel(build, names):
    """With `gc_incoming_axes=incoming_axes_of(model)`, whatever the names, every
    kernel is centralized over its true axes, and nothing else is touched."""
    model = build(names)
    centralized = check_model(model, gc_incoming_axes=incoming_axes_of(model))
    kernels = [p for p, axes in true_axes(model).items() if axes]
    assert len(kernels) >= 5 and set(centralized) == set(kernels)


def test_without_the_step_user_named_depthwise_and_transposed_kernels_go_wrong():
    """Why the step is documented: a name of the user's says nothing of the layer's
    class, and those two kinds keep their weight name `kernel`."""
    wrong, _ = wrongly_applied(decoder(USER_NAMES))
    assert wrong == ["upsample/kernel", "spatial/kernel", "widen/kernel"]


@pytest.mark.parametrize(
    "path, rank, axes",
    [
        ("sequential/dense/kernel", 2, (0,)),
        ("conv2d_3/kernel", 4, (0, 1, 2)),
        ("depthwise_conv2d/kernel", 4, (0, 1)),
        ("depthwise_conv1d_2/kernel", 3, (0,)),
        ("block1a_dwconv/kernel", 4, (0, 1)),
        ("expanded_conv_depthwise/kernel", 4, (0, 1)),
        ("conv_dw_1/kernel", 4, (0, 1)),
        ("sep/depthwise_kernel", 4, (0, 1)),
        ("sep/pointwise_kernel", 4, (0, 1, 2)),
        ("conv2d_transpose/kernel", 4, (0, 1, 3)),
        ("conv3d_transpose_1/kernel", 5, (0, 1, 2, 4)),
        ("multi_head_attention/query/kernel", 3, (0,)),
        ("block/multi_head_attention_2/key/lora_kernel_a", 3, (0,)),
        ("multi_head_attention/query/lora_kernel_b", 2, (0,)),
        # Other attention layers: Gemma's (heads, inputs, head size) or Phi-3's
        # (inputs, heads, head size) under the same names, so left alone.
        ("attn/value/kernel", 3, ()),
        ("decoder_block_0/attention/query/kernel", 3, ()),
        ("transformer_layer_0/attention/query/lora_kernel_a", 3, ()),
        ("dense/lora_kernel_a", 2, (0,)),
        ("conv2d/lora_kernel_b", 2, (0,)),
        ("lstm/lstm_cell/recurrent_kernel", 2, (0,)),
        # Weights not named as Keras names kernels: experts, tables, scales.
        ("moe/experts/expert_feedforward_gate_dense", 3, ()),
        ("swin/attn/relative_position_bias_table", 2, ()),
        ("attn/attention_output/kernel", 3, (0, 1)),
        ("embedding/embeddings", 2, ()),
        ("multi_head_attention/query/bias", 2, ()),
        ("dense/bias", 1, ()),
        # A depthwise word outside the layer's own name says nothing.
        ("depthwise_model/conv2d/kernel", 4, (0, 1, 2)),
        # The depthwise and transposed words apply to convolution kernels only
        # (rank 3 or more): a rank-2 kernel is a dense one, outputs last.
        ("transpose_proj/kernel", 2, (0,)),
        ("depthwise_head/kernel", 2, (0,)),
        ("block/dwconv_gate/kernel", 2, (0,)),
        ("conv_dw_mlp/kernel", 2, (0,)),
        ("conv1d_transpose/kernel", 3, (0, 2)),
        # A user-named depthwise kernel: outputs last, the stated assumption.
        ("dwc/kernel", 4, (0, 1, 2)),
        # EinsumDense: its layout lives in its equation, so it is left alone.
        ("einsum_dense/kernel", 3, ()),
        ("einsum_dense_2/kernel", 2, ()),
        ("einsum_dense/lora_kernel_a", 3, ()),
        ("einsum_dense/lora_kernel_b", 2, ()),
        ("multi_head_attention/attention_output/lora_kernel_a", 3, (0, 1)),
    ],
)
def test_incoming_axes_golden_values(path, rank, axes):
    assert incoming_axes(path, rank) == axes


# Three kernels whose layout the block cannot read off their names: a dense kernel
# whose name has a transposed convolution's word, a stock EinsumDense under its
# default name, and a depthwise kernel under a name of the user's. Their golden
# axes by name, then with the companion.
NAMES_CANNOT_TELL = {
    "by name": [(0,), (), (0, 1, 2)],
    "companion": [(0,), (0,), (0, 1)],
}


def kernels_names_cannot_tell():
    vectors, sequences = keras.Input((6,)), keras.Input((2, 6))
    images = keras.Input((5, 5, 4))
    dense = layers.Dense(3, name="transpose_proj")
    einsum = layers.EinsumDense("abc,cde->abde", output_shape=(None, 4, 8))
    depthwise = layers.DepthwiseConv2D(3, name="dwc")
    outputs = [dense(vectors), einsum(sequences), depthwise(images)]
    model = keras.Model([vectors, sequences, images], outputs)
    kernels = [dense.kernel, einsum.kernel, depthwise.kernel]
    assert [tuple(kernel.shape) for kernel in kernels] == [
        (6, 3),
        (6, 4, 8),
        (3, 3, 4, 1),
    ]
    assert re.fullmatch(r"einsum_dense(_\d+)?/kernel", einsum.kernel.path)
    return model, kernels


@pytest.mark.parametrize(
    "call", ["first apply", "built, with variables", "built, without variables"]
)
@pytest.mark.parametrize("how", NAMES_CANNOT_TELL)
def test_golden_axes_of_kernels_whose_names_cannot_tell(how, call):
    """By name: the dense kernel over its inputs, the EinsumDense kernel left alone,
    the depthwise kernel outputs-last (the stated assumption); with the companion,
    each over its incoming axes. Through apply(), however it is called: before the
    optimizer is built, after, and without variables (as the JAX trainer calls it).
    """
    model, kernels = kernels_names_cannot_tell()
    golden = NAMES_CANNOT_TELL[how]
    kwargs = {"gc_incoming_axes": incoming_axes_of(model)} if how == "companion" else {}
    decided = axes_by_variable(model, GCSGD(**kwargs))
    assert [decided[id(kernel)] for kernel in kernels] == golden
    optimizer = GCSGD(learning_rate=1.0, **kwargs)
    variables = model.trainable_variables
    rng = np.random.default_rng(0)
    grads = [(rng.normal(size=v.shape) + 0.5).astype("float32") for v in variables]
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    tensors = [keras.ops.convert_to_tensor(g) for g in grads]
    if call != "first apply":
        optimizer.build(variables)
    optimizer.apply(tensors, None if call.endswith("without variables") else variables)
    applied = {
        v.path: b - keras.ops.convert_to_numpy(v) for v, b in zip(variables, before)
    }
    raw = {v.path: g for v, g in zip(variables, grads)}
    for kernel, axes in zip(kernels, golden):
        want = centralized_by_truth(raw[kernel.path], axes)
        np.testing.assert_allclose(applied[kernel.path], want, rtol=1e-4, atol=1e-4)


def test_built_axes_are_looked_up_for_some_of_the_variables():
    """MultiOptimizer hands an optimizer some of the variables it was built with."""
    model, kernels = kernels_names_cannot_tell()
    optimizer = GCSGD(learning_rate=1.0)
    optimizer.build(model.trainable_variables)
    some = kernels[::-1]
    rng = np.random.default_rng(0)
    grads = [(rng.normal(size=k.shape) + 0.5).astype("float32") for k in some]
    before = [keras.ops.convert_to_numpy(k) for k in some]
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], some)
    for kernel, grad, start, axes in zip(
        some, grads, before, NAMES_CANNOT_TELL["by name"][::-1]
    ):
        applied = start - keras.ops.convert_to_numpy(kernel)
        want = centralized_by_truth(grad, axes)
        np.testing.assert_allclose(applied, want, rtol=1e-4, atol=1e-4)


# Every layer of keras.layers that owns a weight of rank 2 or more, under its
# default name (aliases such as Convolution2D left out): how to build it, the shape
# of its input, and each such weight's incoming axes, by path without the numbers
# Keras appends to default names (`None`: a weight that holds no neurons' incoming
# weights, such as a bias or a table of embeddings).
def keras_layers():
    vector, sequence, image, volume = (4,), (6, 2), (5, 5, 2), (4, 4, 4, 2)
    cells = [layers.LSTMCell(3), layers.GRUCell(3), layers.SimpleRNNCell(3)]
    recurrent = {"kernel": (0,), "recurrent_kernel": (0,)}

    def cell(name, bias=False):
        axes = {f"{name}/{weight}": a for weight, a in recurrent.items()}
        return {**axes, **({f"{name}/bias": None} if bias else {})}

    built = {
        "Dense": (layers.Dense(3), vector, {"dense/kernel": (0,)}),
        "EinsumDense": (
            layers.EinsumDense("abc,cde->abde", output_shape=(None, 4, 8)),
            sequence[:1] + (6,),
            {"einsum_dense/kernel": (0,)},
        ),
        "Conv1D": (layers.Conv1D(3, 2), sequence, {"conv1d/kernel": (0, 1)}),
        "Conv2D": (layers.Conv2D(3, 2), image, {"conv2d/kernel": (0, 1, 2)}),
        "Conv3D": (layers.Conv3D(3, 2), volume, {"conv3d/kernel": (0, 1, 2, 3)}),
        "Conv1DTranspose": (
            layers.Conv1DTranspose(3, 2),
            sequence,
            {"conv1d_transpose/kernel": (0, 2)},
        ),
        "Conv2DTranspose": (
            layers.Conv2DTranspose(3, 2),
            image,
            {"conv2d_transpose/kernel": (0, 1, 3)},
        ),
        "Conv3DTranspose": (
            layers.Conv3DTranspose(3, 2),
            volume,
            {"conv3d_transpose/kernel": (0, 1, 2, 4)},
        ),
        "DepthwiseConv1D": (
            layers.DepthwiseConv1D(2),
            sequence,
            {"depthwise_conv1d/kernel": (0,)},
        ),
        "DepthwiseConv2D": (
            layers.DepthwiseConv2D(2),
            image,
            {"depthwise_conv2d/kernel": (0, 1)},
        ),
        "SeparableConv1D": (
            layers.SeparableConv1D(3, 2),
            sequence,
            {
                "separable_conv1d/depthwise_kernel": (0,),
                "separable_conv1d/pointwise_kernel": (0, 1),
            },
        ),
        "SeparableConv2D": (
            layers.SeparableConv2D(3, 2),
            image,
            {
                "separable_conv2d/depthwise_kernel": (0, 1),
                "separable_conv2d/pointwise_kernel": (0, 1, 2),
            },
        ),
        "Embedding": (layers.Embedding(10, 4), (3,), {"embedding/embeddings": None}),
        "MultiHeadAttention": (
            layers.MultiHeadAttention(2, 4),
            (5, 8),
            {
                **{f"multi_head_attention/{w}/kernel": (0,) for w in QKV},
                **{f"multi_head_attention/{w}/bias": None for w in QKV},
                "multi_head_attention/attention_output/kernel": (0, 1),
            },
        ),
        "SimpleRNN": (
            layers.SimpleRNN(3),
            sequence,
            cell("simple_rnn/simple_rnn_cell"),
        ),
        "LSTM": (layers.LSTM(3), sequence, cell("lstm/lstm_cell")),
        "GRU": (layers.GRU(3), sequence, cell("gru/gru_cell", bias=True)),
        "RNN": (
            layers.RNN(layers.StackedRNNCells(cells)),
            sequence,
            {
                **cell("rnn/stacked_rnn_cells/lstm_cell"),
                **cell("rnn/stacked_rnn_cells/gru_cell", bias=True),
                **cell("rnn/stacked_rnn_cells/simple_rnn_cell"),
            },
        ),
        "Bidirectional": (
            layers.Bidirectional(layers.LSTM(3)),
            sequence,
            {
                **cell("bidirectional/forward_lstm/lstm_cell"),
                **cell("bidirectional/backward_lstm/lstm_cell"),
            },
        ),
        "ConvLSTM1D": (
            layers.ConvLSTM1D(3, 2),
            (2,) + sequence,
            {
                "conv_lstm1d/conv_lstm_cell/kernel": (0, 1),
                "conv_lstm1d/conv_lstm_cell/recurrent_kernel": (0, 1),
            },
        ),
        "ConvLSTM2D": (
            layers.ConvLSTM2D(3, 2),
            (2,) + image,
            {
                "conv_lstm2d/conv_lstm_cell/kernel": (0, 1, 2),
                "conv_lstm2d/conv_lstm_cell/recurrent_kernel": (0, 1, 2),
            },
        ),
        "ConvLSTM3D": (
            layers.ConvLSTM3D(3, 2),
            (2,) + volume,
            {
                "conv_lstm3d/conv_lstm_cell/kernel": (0, 1, 2, 3),
                "conv_lstm3d/conv_lstm_cell/recurrent_kernel": (0, 1, 2, 3),
            },
        ),
        "TimeDistributed": (
            layers.TimeDistributed(layers.Dense(3)),
            sequence,
            {"time_distributed/dense/kernel": (0,)},
        ),
        "PReLU": (layers.PReLU(), (3, 4), {"p_re_lu/alpha": None}),
        "SpectralNormalization": (
            layers.SpectralNormalization(layers.Dense(3)),
            vector,
            {"spectral_normalization/dense/kernel": (0,)},
        ),
    }
    if hasattr(layers, "GroupQueryAttention"):  # Not in every Keras 3 version.
        built["GroupQueryAttention"] = (
            layers.GroupQueryAttention(4, 2, 1),
            (5, 8),
            {
                **{f"grouped_query_attention/{w}/kernel": (0,) for w in QKV},
                **{f"grouped_query_attention/{w}/bias": None for w in QKV},
                "grouped_query_attention/attention_output/kernel": (0, 1),
            },
        )
    if hasattr(layers, "ReversibleEmbedding"):
        built["ReversibleEmbedding"] = (
            layers.ReversibleEmbedding(10, 4, tie_weights=False),
            (3,),
            {
                "reversible_embedding/embeddings": None,
                # (features, tokens) for the logits: outputs last.
                "reversible_embedding/reverse_embeddings": (0,),
            },
        )
    return built


QKV = ("query", "key", "value")
# Left alone by name: what the path cannot tell. EinsumDense keeps its layout in
# its equation; a weight not named as Keras names kernels.
LEFT_ALONE_BY_NAME = {"einsum_dense/kernel", "reversible_embedding/reverse_embeddings"}
# Layers built inside others above, and those with no weight of rank 2 or more.
INSIDE_OTHERS = ("LSTMCell", "GRUCell", "SimpleRNNCell", "StackedRNNCells")
WITHOUT_KERNELS = ("Identity", "InputLayer", "Lambda", "Masking", "Wrapper")
WITHOUT_KERNELS += ("Attention", "AdditiveAttention")
KERAS_LAYERS = sorted(keras_layers())


def without_numbers(path):
    """`path` without the numbers Keras appends to default names (`dense_3`)."""
    return re.sub(r"_\d+(?=/|$)", "", path)


def test_every_keras_layer_with_a_kernel_is_checked():
    """The layers of the modules that hold Keras' kernels are all in the sweep."""
    modules = ("convolutional", "core", "attention", "rnn")
    found = {
        name
        for name, value in vars(layers).items()
        if isinstance(value, type)
        and value.__module__.split(".")[2:4] in [["layers", m] for m in modules]
        and value.__name__ == name  # Not an alias.
    }
    checked = set(KERAS_LAYERS) | set(INSIDE_OTHERS) | set(WITHOUT_KERNELS)
    assert found - checked == set()


@pytest.mark.parametrize("name", KERAS_LAYERS)
def test_keras_layers_under_default_names(name):
    """By name, every kernel of a Keras layer under its default name is centralized
    over its incoming axes, or left alone where the name cannot tell; with the
    companion, over its incoming axes, the ConvLSTM cell (not exported) and the
    reversible embedding's Dense-like kernel included."""
    layer, shape, expected = keras_layers()[name]
    dtype = "int32" if "Embedding" in name else "float32"
    inputs = keras.Input(shape, dtype=dtype)
    attention = "Attention" in name
    model = keras.Model(inputs, layer(inputs, inputs) if attention else layer(inputs))
    variables = [v for v in model.trainable_variables if len(v.shape) >= 2]
    paths = {without_numbers(v.path): v for v in variables}
    assert sorted(paths) == sorted(expected)
    by_name = axes_by_variable(model, GCRMSprop())
    companion = GCRMSprop(gc_incoming_axes=incoming_axes_of(model))
    companion = axes_by_variable(model, companion)
    for path, variable in paths.items():
        true = expected[path] or ()
        left_alone = path in LEFT_ALONE_BY_NAME or not true
        assert by_name[id(variable)] == (() if left_alone else true), path
        assert companion[id(variable)] == true, path


def test_depthwise_kernel_is_centralized_per_channel_over_its_window():
    # (2, 1, 2, 1): a 2x1 window, 2 channels, multiplier 1.
    grad = np.array([[[[1.0], [10.0]]], [[[3.0], [30.0]]]], dtype="float32")
    result = centralize_gradient(keras.ops.convert_to_tensor(grad), (0, 1))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(result), [[[[-1.0], [-10.0]]], [[[1.0], [10.0]]]]
    )


def test_conv_only_leaves_attention_and_dense_kernels_alone():
    model = transformer_block()
    applied, raw = applied_gradients(model, gc_conv_only=True)
    for path in raw:
        np.testing.assert_allclose(applied[path], raw[path], rtol=1e-4, atol=1e-4)
    # And it still centralizes convolutions.
    model = decoder()
    applied, raw = applied_gradients(model, gc_conv_only=True)
    conv = layer_of(model, layers.Conv2D).kernel.path
    assert not np.allclose(applied[conv], raw[conv], atol=1e-3)


def test_untouched_embedding_rows_stay_put():
    keras.utils.set_random_seed(0)
    model = transformer_block()
    model.compile(optimizer=GCRMSprop(0.01), loss="mse")
    table = layer_of(model, layers.Embedding).embeddings
    start = keras.ops.convert_to_numpy(table)
    tokens = np.array([[1, 2, 3, 1, 2, 3], [4, 5, 6, 4, 5, 6]], dtype="int32")
    model.fit(tokens, np.ones((2, 6, 8), "float32"), epochs=2, verbose=0)
    after = keras.ops.convert_to_numpy(table)
    untouched = [row for row in range(20) if row not in range(1, 7)]
    np.testing.assert_array_equal(after[untouched], start[untouched])
    assert not np.allclose(after[1:7], start[1:7])


def test_exclusions_survive_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model = decoder(USER_NAMES)
    model.compile(optimizer=GCRMSprop(0.01, gc_exclude_names=USER_STEP), loss="mse")
    x = np.random.default_rng(0).normal(size=(4, 4, 4, 8)).astype("float32")
    model.fit(x, model.predict(x, verbose=0), epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer) is GCRMSprop
    assert loaded.optimizer.gc_exclude_names == USER_STEP
    decided = axes_by_variable(loaded, loaded.optimizer)
    assert decided[id(loaded.get_layer("spatial").kernel)] == ()
    assert decided[id(loaded.get_layer("mix").kernel)] == (0, 1, 2)


def test_layouts_read_off_the_layers_survive_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model = decoder(USER_NAMES)
    optimizer = GCRMSprop(0.01, gc_incoming_axes=incoming_axes_of(model))
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).normal(size=(4, 4, 4, 8)).astype("float32")
    model.fit(x, model.predict(x, verbose=0), epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert (
        loaded.optimizer.get_config()["gc_incoming_axes"]
        == optimizer.get_config()["gc_incoming_axes"]
    )
    # A user-named depthwise kernel: over its window, not by its name's rule.
    decided = axes_by_variable(loaded, loaded.optimizer)
    assert decided[id(loaded.get_layer("spatial").kernel)] == (0, 1)
    assert decided[id(loaded.get_layer("upsample").kernel)] == (0, 1, 3)


class OwnLayer(keras.Layer):
    """A layer of its own: its weight is called `kernel`, its layout is its own."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(3, input_shape[-1], 5), name="kernel")

    def call(self, inputs):
        return keras.ops.einsum("bi,eio->bo", inputs, self.kernel)


class MyConv2DTranspose(layers.Conv2DTranspose):
    """A subclass of a Keras layer keeps its layout."""


def test_layouts_read_off_the_layers_leave_layers_of_their_own_alone():
    inputs = keras.Input((4, 4, 2))
    x = MyConv2DTranspose(3, 3, name="mine")(inputs)
    outputs = OwnLayer(name="own")(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    layouts = dict(
        zip([v.path for v in model.trainable_variables], incoming_axes_of(model))
    )
    assert layouts["own/kernel"]["axes"] == []
    assert layouts["mine/kernel"]["axes"] == [0, 1, 3]


# --- The sweep of keras.layers across the constructor options that shape kernels ---

CONVOLUTIONS = ("BaseConv", "BaseConvTranspose", "BaseDepthwiseConv")
CONVOLUTIONS += ("BaseSeparableConv", "ConvLSTMCell")


def reference_layout(layer, weight):
    """The reference for `layer`'s own `weight`: the axes of each output neuron's
    incoming weights, from the layer's class and, for `EinsumDense`, its equation
    (`None`: a weight of no neuron's incoming weights, such as a bias, a table of
    embeddings or PReLU's slopes), and whether it is a convolution's."""
    rank, name = len(weight.shape), weight.name
    classes = [c.__name__ for c in type(layer).__mro__]
    # GC-C centralizes the convolutions' kernels, not LoRA's (rank, filters).
    conv = any(c in CONVOLUTIONS for c in classes) and rank >= 3
    if rank < 2 or "bias" in name or name in ("alpha", "embeddings"):
        return None, conv
    if isinstance(layer, layers.EinsumDense):  # The kernel's letters not output.
        operands, output = layer.equation.split("->")
        kernel = operands.split(",")[1]
        incoming = tuple(i for i, letter in enumerate(kernel) if letter not in output)
        return {"kernel": incoming, "lora_kernel_a": incoming}.get(name, (0,)), conv
    if isinstance(layer, layers.Embedding):
        # (features, tokens) and LoRA's (rank, features): used as Dense kernels;
        # LoRA's (tokens, rank) is a table.
        axes = {"reverse_embeddings": (0,), "lora_embeddings_b": (0,)}
        return axes.get(name), conv
    if "BaseConvTranspose" in classes:  # (window..., outputs, inputs)
        return all_but(rank, -2), conv
    if "BaseDepthwiseConv" in classes or name == "depthwise_kernel":
        return tuple(range(rank - 2)), conv  # (window..., channels, multiplier)
    # Dense, Conv*, pointwise kernels, RNN and ConvLSTM cells, LoRA factors.
    return all_but(rank, -1), conv


def own_weights(model):
    """Each trainable variable of `model`, with the layer that owns it."""
    owners = {}
    for layer in model._flatten_layers():
        owners.update({id(w): layer for w in layer._trainable_variables})
    return [(v, owners[id(v)]) for v in model.trainable_variables]


def axes_by_variable(model, optimizer):
    """`id(variable)` -> the axes `optimizer`, built on `model` if it is not yet,
    centralizes it over, as it saves them."""
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    layouts = optimizer.get_config()["gc_incoming_axes"]
    axes = [tuple(layout["axes"]) for layout in layouts]
    return dict(zip(map(id, model.trainable_variables), axes))


def decided_axes(model, **gc_kwargs):
    """The axes a GC optimizer built on `model` centralizes each weight over, as it
    saves them."""
    optimizer = GCSGD(**gc_kwargs)
    optimizer.build(model.trainable_variables)
    layouts = optimizer.get_config()["gc_incoming_axes"]
    return [tuple(layout["axes"]) for layout in layouts]


vector, sequence, image, volume = (4,), (6, 2), (5, 5, 2), (4, 4, 4, 2)
# Each option that can change a kernel's layout, or the names of its weights:
# (id, how to build the layer under a name or its default one, input shape).
SWEEP = [
    ("Dense", lambda n: layers.Dense(3, name=n), vector),
    ("Dense-3d-input", lambda n: layers.Dense(3, name=n), sequence),
    ("Dense-lora", lambda n: layers.Dense(3, lora_rank=2, name=n), vector),
    ("Dense-no-bias", lambda n: layers.Dense(3, use_bias=False, name=n), vector),
    (
        "EinsumDense-matrix",
        lambda n: layers.EinsumDense("ab,bc->ac", 3, bias_axes="c", name=n),
        vector,
    ),
    (
        "EinsumDense-heads",
        lambda n: layers.EinsumDense("abc,cde->abde", (None, 4, 2), name=n),
        sequence,
    ),
    (
        "EinsumDense-heads-first",
        lambda n: layers.EinsumDense("abc,dce->abde", (None, 4, 3), name=n),
        sequence,
    ),
    (
        "EinsumDense-two-inputs",
        lambda n: layers.EinsumDense("abc,bcd->ad", 3, name=n),
        sequence,
    ),
    (
        "EinsumDense-lora",
        lambda n: layers.EinsumDense(
            "abc,cde->abde", (None, 4, 2), lora_rank=2, name=n
        ),
        sequence,
    ),
    ("Conv1D", lambda n: layers.Conv1D(4, 2, name=n), sequence),
    ("Conv1D-groups", lambda n: layers.Conv1D(4, 2, groups=2, name=n), sequence),
    ("Conv1D-lora", lambda n: layers.Conv1D(4, 2, lora_rank=2, name=n), sequence),
    ("Conv2D", lambda n: layers.Conv2D(4, 2, name=n), image),
    (
        "Conv2D-channels-first",
        lambda n: layers.Conv2D(4, 2, data_format="channels_first", name=n),
        (2, 5, 5),
    ),
    ("Conv2D-groups", lambda n: layers.Conv2D(4, 2, groups=2, name=n), image),
    ("Conv3D", lambda n: layers.Conv3D(4, 2, name=n), volume),
    ("Conv1DTranspose", lambda n: layers.Conv1DTranspose(3, 2, name=n), sequence),
    ("Conv2DTranspose", lambda n: layers.Conv2DTranspose(3, 2, name=n), image),
    (
        "Conv2DTranspose-channels-first",
        lambda n: layers.Conv2DTranspose(3, 2, data_format="channels_first", name=n),
        (2, 5, 5),
    ),
    ("Conv3DTranspose", lambda n: layers.Conv3DTranspose(3, 2, name=n), volume),
    ("DepthwiseConv1D", lambda n: layers.DepthwiseConv1D(2, name=n), sequence),
    (
        "DepthwiseConv2D-multiplier",
        lambda n: layers.DepthwiseConv2D(2, depth_multiplier=3, name=n),
        image,
    ),
    ("SeparableConv1D", lambda n: layers.SeparableConv1D(3, 2, name=n), sequence),
    (
        "SeparableConv2D-multiplier",
        lambda n: layers.SeparableConv2D(3, 2, depth_multiplier=2, name=n),
        image,
    ),
    ("Embedding", lambda n: layers.Embedding(10, 4, name=n), (3,)),
    ("Embedding-lora", lambda n: layers.Embedding(10, 4, lora_rank=2, name=n), (3,)),
    (
        "ReversibleEmbedding-untied",
        lambda n: layers.ReversibleEmbedding(10, 4, tie_weights=False, name=n),
        (3,),
    ),
    (
        "ReversibleEmbedding-tied",
        lambda n: layers.ReversibleEmbedding(10, 4, name=n),
        (3,),
    ),
    ("MultiHeadAttention", lambda n: layers.MultiHeadAttention(2, 4, name=n), (5, 8)),
    (
        "MultiHeadAttention-gate",
        lambda n: layers.MultiHeadAttention(2, 4, use_gate=True, name=n),
        (5, 8),
    ),
    (
        "MultiHeadAttention-output-shape",
        lambda n: layers.MultiHeadAttention(2, 4, output_shape=(6, 7), name=n),
        (5, 8),
    ),
    (
        "MultiHeadAttention-output-int",
        lambda n: layers.MultiHeadAttention(2, 4, output_shape=5, name=n),
        (5, 8),
    ),
    (
        "MultiHeadAttention-attention-axes",
        lambda n: layers.MultiHeadAttention(2, 4, attention_axes=(1, 2), name=n),
        (3, 3, 8),
    ),
    (
        "MultiHeadAttention-value-dim",
        lambda n: layers.MultiHeadAttention(2, 4, value_dim=3, use_bias=False, name=n),
        (5, 8),
    ),
    (
        "GroupQueryAttention",
        lambda n: layers.GroupQueryAttention(4, 2, 1, name=n),
        (5, 8),
    ),
    (
        "GroupQueryAttention-gate",
        lambda n: layers.GroupQueryAttention(4, 4, 2, use_gate=True, name=n),
        (5, 8),
    ),
    ("SimpleRNN", lambda n: layers.SimpleRNN(3, name=n), sequence),
    ("LSTM", lambda n: layers.LSTM(3, name=n), sequence),
    ("GRU", lambda n: layers.GRU(3, name=n), sequence),
    ("GRU-reset-before", lambda n: layers.GRU(3, reset_after=False, name=n), sequence),
    (
        "RNN-stacked-cells",
        lambda n: layers.RNN(
            layers.StackedRNNCells([layers.LSTMCell(3), layers.GRUCell(3)]), name=n
        ),
        sequence,
    ),
    (
        "Bidirectional",
        lambda n: layers.Bidirectional(layers.LSTM(3), name=n),
        sequence,
    ),
    ("ConvLSTM1D", lambda n: layers.ConvLSTM1D(3, 2, name=n), (2,) + sequence),
    ("ConvLSTM2D", lambda n: layers.ConvLSTM2D(3, 2, name=n), (2,) + image),
    ("ConvLSTM3D", lambda n: layers.ConvLSTM3D(3, 2, name=n), (2,) + volume),
    (
        "TimeDistributed",
        lambda n: layers.TimeDistributed(layers.Conv1D(3, 2), name=n),
        (2,) + sequence,
    ),
    (
        "SpectralNormalization",
        lambda n: layers.SpectralNormalization(layers.Conv2D(3, 2), name=n),
        image,
    ),
    ("PReLU", lambda n: layers.PReLU(name=n), (3, 4)),
    ("PReLU-shared", lambda n: layers.PReLU(shared_axes=[1], name=n), (3, 4)),
]


def swept_model(make, shape, name):
    """A model of one swept layer, or a skip where this Keras lacks the option."""
    try:
        layer = make(name)
    except (TypeError, ValueError, AttributeError) as error:
        pytest.skip(f"not in Keras {keras.__version__}: {error}")
    dtype = "int32" if isinstance(layer, layers.Embedding) else "float32"
    inputs = keras.Input(shape, dtype=dtype)
    attention = isinstance(
        layer, (layers.MultiHeadAttention, layers.GroupQueryAttention)
    )
    return keras.Model(inputs, layer(inputs, inputs) if attention else layer(inputs))


@pytest.mark.parametrize("conv_only", [False, True], ids=["GC", "GC-C"])
@pytest.mark.parametrize(
    "make, shape", [s[1:] for s in SWEEP], ids=[s[0] for s in SWEEP]
)
def test_sweep_of_keras_layers_and_their_options(make, shape, conv_only):
    """By name (default names): each weight over its reference axes, or left
    alone. With the companion (default names and a name of the user's): each over
    its reference axes exactly. GC-C: only convolution kernels, in both ways."""
    for name in (None, "mine"):
        model = swept_model(make, shape, name)
        reference = []
        for weight, layer in own_weights(model):
            axes, conv = reference_layout(layer, weight)
            reference.append(axes if axes and (conv or not conv_only) else ())
        layouts = incoming_axes_of(model)
        companion = decided_axes(
            model, gc_incoming_axes=layouts, gc_conv_only=conv_only
        )
        paths = [v.path for v in model.trainable_variables]
        assert dict(zip(paths, companion)) == dict(zip(paths, reference))
        if name is None:
            by_name = decided_axes(model, gc_conv_only=conv_only)
            wrong = [
                (path, got, want)
                for path, got, want in zip(paths, by_name, reference)
                if got not in ((), want)
            ]
            assert wrong == []


class Containers(keras.Model):
    """Two plain layers that hold sublayers and are never called: their `path` is
    `None`."""

    def __init__(self):
        super().__init__()
        self.first, self.second = keras.Layer(), keras.Layer()
        self.first.inner = layers.Dense(3, name="inner")
        self.second.inner = layers.Conv1DTranspose(3, 2, name="inner")

    def call(self, x):
        return self.second.inner(self.first.inner(x))


def test_layouts_read_off_the_layers_of_containers_never_called():
    model = Containers()
    model(np.zeros((1, 4, 5), "float32"))
    assert model.first.path is None and model.second.path is None
    layouts = incoming_axes_of(model)
    axes = {id(v): layout["axes"] for v, layout in zip(model.weights, layouts)}
    assert axes[id(model.first.inner.kernel)] == [0]
    assert axes[id(model.second.inner.kernel)] == [0, 2]  # (window, outputs, inputs)
