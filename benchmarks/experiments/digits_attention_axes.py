"""Does it matter along which axes a Gemma-layout attention kernel is centralized?

    python benchmarks/experiments/digits_attention_axes.py [--seeds 10] [--epochs 10]
        [--json PATH]

A small attention classifier on scikit-learn's digits, each image's 8 rows its 8
tokens (as digits_gc_vs_rmsprop.py: same data, learning rate, batch size, and for each
seed the same initial weights and batch order for every arm). Its query, key and value
are `EinsumDense("btd,ndh->btnh")` layers, kernels (heads, inputs, head size) as
keras_hub's Gemma lays them out: each output neuron's incoming weights lie along axis
1. Trained with:
- `rmsprop`: plain RMSprop;
- `wrong_axes`: query, key and value kernels centralized over axis 0, the heads (what
  a rule for MultiHeadAttention's (inputs, heads, head size) layout does to this
  one), the rest as GCRMSprop ships it;
- `true_axes`: GCRMSprop with `gc_incoming_axes=incoming_axes_of(model)` (from
  gc_layouts.py), the axes read off each EinsumDense's equation: axis 1 for query,
  key and value;
- `left_alone`: GCRMSprop as the example ships it, which by name leaves the query,
  key and value kernels of an attention layer not named `multi_head_attention` alone.
Printed: the axes each arm centralizes every weight over, each arm's mean test
accuracy and final training loss, and the paired difference of each arm from
`true_axes`, with its 95% interval and verdict.
"""

import functools
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
from keras import ops  # noqa: E402
from digits_gc_vs_rmsprop import (  # noqa: E402
    LEARNING_RATE,
    compare_with,
    load_data,
    paired_runs,
    parse_args,
    provenance,
    seed_printer,
    write_json,
)

from gc_layouts import incoming_axes_of  # noqa: E402
from gradient_centralization import GCRMSprop  # noqa: E402

WIDTH, HEADS, HEAD_SIZE = 32, 4, 8
PROJECTIONS = r"(^|/)(query|key|value)/kernel$"
# The axes each arm centralizes the query, key and value kernels over.
DESIGNED_AXES = {"rmsprop": (), "wrong_axes": (0,), "true_axes": (1,), "left_alone": ()}


class WrongAxesGCRMSprop(GCRMSprop):
    """Centralizes query, key and value kernels over axis 0."""

    def gc_layout(self, variable):
        layout = super().gc_layout(variable)
        if re.search(PROJECTIONS, variable.path):
            layout["axes"] = [0]
        return layout


class Attention(keras.layers.Layer):
    """Softmax attention over the tokens, with Gemma's kernel layouts: query, key
    and value (heads, inputs, head size), output (heads, head size, outputs)."""

    def build(self, input_shape):
        def einsum_dense(name, equation, output_shape, shape):
            layer = keras.layers.EinsumDense(equation, output_shape, name=name)
            layer.build(shape)
            return layer

        heads_shape = (*input_shape[:-1], HEADS, HEAD_SIZE)
        self.query, self.key, self.value = (
            einsum_dense(name, "btd,ndh->btnh", (None, HEADS, HEAD_SIZE), input_shape)
            for name in ("query", "key", "value")
        )
        self.attention_output = einsum_dense(
            "attention_output", "btnh,nhd->btd", (None, input_shape[-1]), heads_shape
        )

    def call(self, inputs):
        query, key, value = self.query(inputs), self.key(inputs), self.value(inputs)
        scores = ops.einsum("btnh,bsnh->bnts", query, key) / HEAD_SIZE**0.5
        weights = ops.softmax(scores, axis=-1)
        return self.attention_output(ops.einsum("bnts,bsnh->btnh", weights, value))


class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per token position: without it, attention and pooling
    would not see the rows' order."""

    def build(self, input_shape):
        # As large as the tokens: at 0.02, ten epochs leave test accuracy near 0.77.
        initializer = keras.initializers.RandomNormal(stddev=1.0)
        self.embeddings = self.add_weight(
            shape=input_shape[1:], initializer=initializer, name="embeddings"
        )

    def call(self, inputs):
        return inputs + self.embeddings


def build_model():
    # Every layer named, so that every build gives its variables the same paths.
    images = keras.Input((8, 8, 1), name="images")
    tokens = keras.layers.Reshape((8, 8), name="rows")(images)
    tokens = keras.layers.Dense(WIDTH, name="embed")(tokens)
    tokens = PositionEmbedding(name="position")(tokens)
    attended = Attention(name="attention")(tokens)
    tokens = keras.layers.Add(name="residual")([tokens, attended])
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(tokens)
    logits = keras.layers.Dense(10, name="classifier")(pooled)
    return keras.Model(images, logits, name="attention_digits")


@functools.cache
def true_axes():
    """The incoming axes read off the layers of a model that build_model() builds
    (the same paths for every build)."""
    return incoming_axes_of(build_model())


ARMS = {
    "rmsprop": lambda: keras.optimizers.RMSprop(LEARNING_RATE),
    "wrong_axes": lambda: WrongAxesGCRMSprop(LEARNING_RATE),
    "true_axes": lambda: GCRMSprop(LEARNING_RATE, gc_incoming_axes=true_axes()),
    "left_alone": lambda: GCRMSprop(LEARNING_RATE),
}


def arm_axes():
    """For each arm, the axes its optimizer centralizes each weight over, by path;
    raises if the query, key or value kernels' are not as the arms are designed."""
    variables = build_model().trainable_variables
    axes = {}
    for arm, make_optimizer in ARMS.items():
        optimizer = make_optimizer()
        decided = [()] * len(variables)  # Plain RMSprop centralizes nothing.
        if hasattr(optimizer, "gc_layout"):
            optimizer.build(variables)
            layouts = optimizer.get_config()["gc_incoming_axes"]
            decided = [tuple(layout["axes"]) for layout in layouts]
        axes[arm] = {v.path: found for v, found in zip(variables, decided)}
        for path, found in axes[arm].items():
            if re.search(PROJECTIONS, path) and found != DESIGNED_AXES[arm]:
                raise RuntimeError(
                    f"{arm} centralizes {path} over {found}, "
                    f"not {DESIGNED_AXES[arm]} as designed"
                )
    print("axes centralized: " + ", ".join(ARMS))
    for v in variables:
        found = ", ".join(str(axes[arm][v.path]) for arm in ARMS)
        print(f"  {v.path} {tuple(v.shape)}: {found}")
    return axes


def main(argv=None):
    args = parse_args(__doc__, argv)
    produced = provenance()
    arm_axes()
    runs = paired_runs(ARMS, build_model, args, load_data(), seed_printer(ARMS))
    summary = compare_with("true_axes", ARMS, runs)
    write_json(args, runs, summary, produced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
