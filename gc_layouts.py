"""Exact layouts for Gradient Centralization, read off the layers of a model.

`incoming_axes()` in gradient_centralization.py judges a kernel by its variable path.
It leaves alone what a path cannot tell: an `EinsumDense` kernel, the attention of
keras_hub's Gemma, which names its kernels as Phi-3 does but lays them out
otherwise, the experts of a mixture. And it takes a `kernel` whose layer name tells
nothing else to be outputs-last, which a depthwise or transposed layer you named
yourself is not. `incoming_axes_of(model)` reads each layout off the layer that owns
the weight instead:

    optimizer = GCRMSprop(1e-4, gc_incoming_axes=incoming_axes_of(model))

Call it on the built model, after `enable_lora()` if you use LoRA. It needs
`incoming_axes()`: copy it below the example's block.
"""

import keras

from gradient_centralization import incoming_axes


def layout_of(layer, variable):
    """The layout of `layer`'s own `variable`, as `gc_incoming_axes` lists them: an
    `EinsumDense` kernel's axes from its equation, others from the class of Keras'
    own that `layer` is or extends (exported or not, as ConvLSTM's cell); no axes
    for a layer of another class (`None` too), whose layout is unknown.
    """
    name, rank = variable.name, len(variable.shape)
    layout = {"shape": list(variable.shape), "axes": [], "conv": rank >= 3}
    if isinstance(layer, keras.layers.EinsumDense):
        operands, output = layer.equation.split("->")
        kernel = operands.split(",")[1]
        incoming = [i for i, letter in enumerate(kernel) if letter not in output]
        # LoRA adds `einsum(equation, x, lora_kernel_a) @ lora_kernel_b`.
        axes = {"kernel": incoming, "lora_kernel_a": incoming, "lora_kernel_b": [0]}
        return {**layout, "axes": axes.get(name, []), "conv": False}
    if isinstance(layer, keras.layers.Embedding):
        # (features, tokens) and LoRA's (rank, features) are used as Dense kernels.
        dense = name in ("reverse_embeddings", "lora_embeddings_b")
        return {**layout, "axes": [0] if dense else []}
    mro = [c for c in type(layer).__mro__ if issubclass(c, keras.Layer)]
    keras_classes = [c for c in mro if c.__module__.startswith("keras.")]
    if not keras_classes or keras_classes[0] in (keras.Layer, keras.Model):
        return layout
    name = f"{keras_classes[0].__name__.lower()}/{name}"
    return {**layout, "axes": list(incoming_axes(name, rank))}


def incoming_axes_of(model, variables=None):
    """The layouts of `variables` (by default the model's trainable variables, in
    the order Keras builds the optimizer with), read off the layers that own them.
    For `gc_incoming_axes=`.
    """
    owners, visited, layers_to_visit = {}, set(), [model]
    while layers_to_visit:
        layer = layers_to_visit.pop()
        if id(layer) in visited:  # Each layer once, cycles or not.
            continue
        visited.add(id(layer))
        # Keras tracks the layers held in a layer's attributes, lists and dicts too.
        sublayers = []
        for value in vars(layer).values():
            values = list(value.values()) if isinstance(value, dict) else value
            values = values if isinstance(values, (list, tuple)) else [values]
            sublayers += [v for v in values if isinstance(v, keras.Layer)]
        # A layer owns the weights that none of its sublayers holds.
        held = {id(w) for sublayer in sublayers for w in sublayer.weights}
        owners.update({id(w): layer for w in layer.weights if id(w) not in held})
        layers_to_visit += sublayers
    variables = model.trainable_variables if variables is None else variables
    return [layout_of(owners.get(id(v)), v) for v in variables]
