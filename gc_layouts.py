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


def owned_incoming_axes(layer, variable):
    """The incoming axes of `layer`'s own `variable`: an `EinsumDense` kernel's from
    its equation, others from the Keras layer class `layer` is or extends; `()` for
    a layer of another class (`None` too), whose layout is unknown.
    """
    name, rank = variable.name, len(variable.shape)
    if isinstance(layer, keras.layers.EinsumDense):
        operands, output = layer.equation.split("->")
        kernel = operands.split(",")[1]
        incoming = tuple(i for i, letter in enumerate(kernel) if letter not in output)
        # LoRA adds `einsum(equation, x, lora_kernel_a) @ lora_kernel_b`.
        axes = {"kernel": incoming, "lora_kernel_a": incoming, "lora_kernel_b": (0,)}
        return axes.get(name, ())
    mro = type(layer).__mro__
    classes = [c for c in mro if getattr(keras.layers, c.__name__, None) is c]
    if not classes or classes[0] is keras.Layer:
        return ()
    return incoming_axes(f"{classes[0].__name__.lower()}/{name}", rank)


def incoming_axes_of(model):
    """The incoming axes of every trainable variable of a built `model`, by path,
    read off the layers that own them. For `gc_incoming_axes=`.
    """
    layers_by_path, layers_to_visit = {}, [model]
    while layers_to_visit:
        layer = layers_to_visit.pop()
        if layer.path not in layers_by_path:  # Each layer once, cycles or not.
            layers_by_path[layer.path] = layer
            # Keras tracks the layers held in a layer's attributes, lists included.
            for value in vars(layer).values():
                values = value if isinstance(value, (list, tuple)) else [value]
                layers_to_visit += [v for v in values if isinstance(v, keras.Layer)]
    variables = model.trainable_variables
    owners = [layers_by_path.get(v.path.rpartition("/")[0]) for v in variables]
    return {v.path: owned_incoming_axes(o, v) for v, o in zip(variables, owners)}
