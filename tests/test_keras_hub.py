"""The block on the transformers Keras users build with keras_hub: 12 backbones from
tiny configs, random weights, no downloads, with and without LoRA.

The expected axes come from the layer that owns each weight, its class and, for an
`EinsumDense`, its equation (the incoming axes of a kernel are those whose letter the
output lacks), never from variable paths, which is how the block decides without
the companion. Two promises are checked:
- by names alone (`GCRMSprop()`), no kernel is centralized along axes other than
  its incoming ones: what the names cannot tell is left alone;
- with the companion (`gc_incoming_axes=incoming_axes_of(model)`), every kernel of
  a Keras layer is centralized over its true axes; only the experts of a mixture,
  kept by a keras_hub layer of its own, are left alone.
tests/test_backends.py runs this file again under KERAS_BACKEND=jax and torch.
"""

import os

import keras
import pytest
from keras import layers

from gc_layouts import incoming_axes_of
from gradient_centralization import GCRMSprop

# keras-hub 0.32.0 requires Keras 3.15 or later; the oldest-versions job runs
# Keras 3.10.0, without keras-hub (.ci/constraints-oldest.txt says so).
if tuple(int(part) for part in keras.version().split(".")[:2]) < (3, 15):
    pytest.skip(
        f"keras-hub 0.32.0 needs Keras >= 3.15, not {keras.version()}",
        allow_module_level=True,
    )
if not os.environ.get("CI"):
    pytest.importorskip("keras_hub", reason="pip install -r tests/requirements.txt")
from keras_hub import models  # noqa: E402

LLM = dict(vocabulary_size=64, num_layers=1, hidden_dim=16, intermediate_dim=32)
GQA = dict(num_query_heads=2, num_key_value_heads=1)
HEADS = dict(num_heads=2)
BACKBONES = {
    "bert": lambda: models.BertBackbone(max_sequence_length=8, **HEADS, **LLM),
    "gpt2": lambda: models.GPT2Backbone(max_sequence_length=8, **HEADS, **LLM),
    # Two key-value heads: with one, a centralization over the heads would skip it.
    "gemma": lambda: models.GemmaBackbone(
        num_query_heads=2, num_key_value_heads=2, head_dim=8, **LLM
    ),
    "llama3": lambda: models.Llama3Backbone(**GQA, **LLM),
    "mistral": lambda: models.MistralBackbone(**GQA, **LLM),
    "qwen3": lambda: models.Qwen3Backbone(head_dim=8, **GQA, **LLM),
    "phi3": lambda: models.Phi3Backbone(**GQA, **LLM),
    "mixtral": lambda: models.MixtralBackbone(num_experts=2, top_k=1, **GQA, **LLM),
    "qwen3_moe": lambda: models.Qwen3MoeBackbone(
        head_dim=8, moe_intermediate_dim=16, num_experts=2, top_k=1, **GQA, **LLM
    ),
    "t5": lambda: models.T5Backbone(key_value_dim=8, **HEADS, **LLM),
    "vit": lambda: models.ViTBackbone(
        image_shape=(16, 16, 3),
        patch_size=8,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
    ),
    "swin": lambda: models.SwinTransformerBackbone(
        image_shape=(32, 32, 3),
        embed_dim=8,
        depths=[1],
        num_heads=[2],
        window_size=4,
        patch_size=4,
    ),
}
# T5 is left out: `enable_lora()` finds none of its targets there and freezes all.
WITH_LORA = ["bert", "gpt2", "gemma", "llama3", "mistral", "qwen3", "phi3"]
WITH_LORA += ["mixtral", "qwen3_moe"]
CASES = [(name, False) for name in BACKBONES] + [(name, True) for name in WITH_LORA]
MIXTURES = ("mixtral", "qwen3_moe")

_built = {}


def backbone(name, lora):
    """Each backbone is built once per process (per backend)."""
    if (name, lora) not in _built:
        keras.utils.set_random_seed(0)
        model = BACKBONES[name]()
        if lora:
            model.enable_lora(2)
        _built[name, lora] = model
    return _built[name, lora]


def einsum_axes(equation, name):
    """The incoming axes of an `EinsumDense` weight, from its equation.

    The kernel's incoming axes hold the letters the output lacks. LoRA computes
    `einsum(equation, x, lora_kernel_a) @ lora_kernel_b`: `lora_kernel_a` is the
    kernel with its last (output) letter replaced by the rank, so it sums over the
    same axes; `lora_kernel_b` is (rank, outputs) and sums over the rank.
    """
    inputs, output = equation.split("->")
    kernel = inputs.split(",")[1]
    incoming = tuple(i for i, letter in enumerate(kernel) if letter not in output)
    return {"kernel": incoming, "lora_kernel_a": incoming, "lora_kernel_b": (0,)}.get(
        name
    )


def true_axes(model):
    """Variable path -> (incoming axes or None, kind): `None` where the weight
    holds no neurons' incoming weights (an embedding, a bias, a table of relative
    positions); kind is "einsum" or "dense" (Dense and Conv*) for Keras' own
    layers, "experts" for a mixture's or "other".
    """
    expected = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for variable in layer._trainable_variables:
            if not variable.trainable:  # Frozen by `enable_lora()`.
                continue
            name, rank = variable.name, len(variable.shape)
            axes, kind = None, "other"
            if isinstance(layer, layers.EinsumDense):
                axes, kind = einsum_axes(layer.equation, name), "einsum"
            elif isinstance(layer, (layers.Dense, layers.Conv1D, layers.Conv2D)):
                kind = "dense"
                if name in ("kernel", "lora_kernel_a", "lora_kernel_b"):
                    axes = tuple(range(rank - 1))
            elif isinstance(layer, layers.Embedding) and name == "reverse_embeddings":
                # (features, tokens): the logits are `x @ reverse_embeddings`.
                axes, kind = (0,), "reverse_embeddings"
            elif type(layer).__name__.endswith("MoeExperts") and rank == 3:
                axes, kind = (1,), "experts"  # (experts, inputs, outputs) each
            expected[variable.path] = (axes, kind)
    return expected


def decided_axes(model, optimizer):
    """Variable path -> the axes `optimizer`, built on `model`, centralizes it over,
    as it saves them (the paths of these backbones are unique)."""
    optimizer.build(model.trainable_variables)
    layouts = optimizer.get_config()["gc_incoming_axes"]
    return {v.path: l["axes"] for v, l in zip(model.trainable_variables, layouts)}


def check(model, optimizer):
    """The kernels centralized along wrong axes, and those left alone, by path."""
    expected = true_axes(model)
    decided = decided_axes(model, optimizer)
    wrong, left_alone = [], []
    for variable in model.trainable_variables:
        if len(variable.shape) < 2:
            continue
        assert variable.path in expected, f"{variable.path}: owner not found"
        axes, _ = expected[variable.path]
        chosen = tuple(sorted(decided[variable.path]))
        if not chosen:
            left_alone.append(variable.path)
        elif chosen != axes:
            wrong.append(f"{variable.path}: {chosen}, not {axes}")
    return wrong, left_alone


@pytest.mark.parametrize("name, lora", CASES)
def test_by_names_no_kernel_is_centralized_along_wrong_axes(name, lora):
    model = backbone(name, lora)
    wrong, left_alone = check(model, GCRMSprop(1e-3))
    assert wrong == []
    # Dense and convolution kernels, whose names tell, are still centralized,
    # and so is at least one kernel of every backbone.
    expected = true_axes(model)
    dense = [p for p, (axes, kind) in expected.items() if axes and kind == "dense"]
    assert not set(dense) & set(left_alone)
    assert {p for p, (axes, _) in expected.items() if axes} - set(left_alone)


@pytest.mark.parametrize("name, lora", CASES)
def test_read_off_the_layers_every_keras_kernel_is_exact(name, lora):
    model = backbone(name, lora)
    optimizer = GCRMSprop(1e-3, gc_incoming_axes=incoming_axes_of(model))
    wrong, left_alone = check(model, optimizer)
    assert wrong == []
    expected = true_axes(model)
    # Left alone: only weights that hold no neurons, and the experts.
    kernels = [p for p in left_alone if expected[p][0] is not None]
    experts = [p for p, (_, kind) in expected.items() if kind == "experts"]
    assert sorted(kernels) == sorted(experts)
    assert bool(experts) == (name in MIXTURES and not lora)


def test_gemma_attention_is_centralized_over_the_model_axis():
    """Gemma's query, key and value are (heads, model, head size): the incoming
    axis is 1, which only the layers can tell (Phi-3 uses the same names)."""
    model = backbone("gemma", False)
    axes = decided_axes(model, GCRMSprop(gc_incoming_axes=incoming_axes_of(model)))
    for weight in ("query", "key", "value"):
        assert axes[f"decoder_block_0/attention/{weight}/kernel"] == [1]
    by_names = decided_axes(model, GCRMSprop(1e-3))
    assert by_names["decoder_block_0/attention/query/kernel"] == []
    phi3 = backbone("phi3", False)
    phi3 = decided_axes(phi3, GCRMSprop(gc_incoming_axes=incoming_axes_of(phi3)))
    assert phi3["transformer_layer_0/attention/query/kernel"] == [0]
