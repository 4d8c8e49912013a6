"""Does it matter along which axes a depthwise kernel is centralized?

    python benchmarks/experiments/digits_depthwise_axes.py [--seeds 10] [--epochs 10]
        [--json PATH]

A small depthwise-separable CNN on scikit-learn's digits (as digits_gc_vs_rmsprop.py:
same data, learning rate, batch size, and for each seed the same initial weights and
batch order for every arm), trained with:
- `rmsprop`: plain RMSprop;
- `per_channel`: GCRMSprop as the example ships it: each depthwise kernel
  (height, width, channels, multiplier) centralized per channel over its window;
- `all_channels`: depthwise kernels centralized over all axes but the last, one mean
  over every channel (what a rule of "all axes but the last" does);
- `excluded`: depthwise kernels left alone, the rest centralized.
Printed: each arm's mean test accuracy and final training loss, and the paired
difference of each arm from `per_channel`, with its 95% interval and verdict.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
from digits_gc_vs_rmsprop import (  # noqa: E402
    LEARNING_RATE,
    compare_with,
    load_data,
    paired_runs,
    parse_args,
    seed_printer,
    write_json,
)

from gradient_centralization import GCRMSprop  # noqa: E402


class AllChannelsGCRMSprop(GCRMSprop):
    """Centralizes depthwise kernels over all axes but the last."""

    def gc_layout(self, variable):
        layout = super().gc_layout(variable)
        if "depthwise" in variable.path:
            layout["axes"] = list(range(len(variable.shape) - 1))
        return layout


ARMS = {
    "rmsprop": lambda: keras.optimizers.RMSprop(LEARNING_RATE),
    "per_channel": lambda: GCRMSprop(LEARNING_RATE),
    "all_channels": lambda: AllChannelsGCRMSprop(LEARNING_RATE),
    "excluded": lambda: GCRMSprop(LEARNING_RATE, gc_exclude_names=["depthwise"]),
}


def build_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 1, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 1, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def main(argv=None):
    args = parse_args(__doc__, argv)
    runs = paired_runs(ARMS, build_model, args, load_data(), seed_printer(ARMS))
    summary = compare_with("per_channel", ARMS, runs)
    write_json(args, runs, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
