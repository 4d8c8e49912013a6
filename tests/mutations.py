"""Mutation check of the example: does a test fail when a claim is computed wrongly?

    python tests/mutations.py            # every mutant; CONTRIBUTING.md says how long
    python tests/mutations.py --list     # the mutants and the tests that should fail
    python tests/mutations.py --only test-split epoch-time-offset

Each mutant is one small semantic edit of `gradient_centralization.py` or of its
companion `gc_layouts.py`: the test figures taken from the training split, half a
second added to every epoch, the verdict's "better" and "worse" swapped, Gradient
Centralization replaced by the identity, an `EinsumDense` kernel's incoming axes
inverted, and so on. For each one this script copies the repository (without its
virtual environment and git folder) into a temporary folder, applies the edit to
the copy, runs the tests listed for it there with `pytest -x`, and restores the
file. A mutant is
killed when a test fails, and survives when they all pass. Before any mutant, the
unmutated copy must pass every listed test, or the check stops: a test that fails
anyway kills nothing.

Equivalent mutants (edits that cannot change what the example computes) are listed
too, with the reason; they are expected to survive. The script exits with status 1
if a mutant that should be killed survives, or an equivalent one is killed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = "gradient_centralization.py"
COMPANION = "gc_layouts.py"


@dataclass
class Mutant:
    name: str
    claim: str
    old: str  # Must occur exactly once in `file`.
    new: str
    tests: tuple  # pytest node ids, relative to the repository root.
    equivalent: str = ""  # Why it cannot change behaviour, for equivalent mutants.
    file: str = EXAMPLE  # The file edited, relative to the repository root.


SCRIPT_TESTS = "tests/test_script.py::"
OPTIMIZER_TESTS = "tests/test_optimizer.py::"
LAYERS_TESTS = "tests/test_layers.py::"
HUB_TESTS = "tests/test_keras_hub.py::"

MUTANTS = [
    # Gradient Centralization itself.
    Mutant(
        "gc-identity",
        "GCRMSprop centralizes gradients",
        "return keras.ops.cast(wide - keras.ops.mean(wide, axis=axes, keepdims=True), dtype)",
        "return keras.ops.cast(wide, dtype)",
        (
            "tests/test_centralize.py::test_dense_kernel_columns_get_zero_mean",
            OPTIMIZER_TESTS + "test_golden_values_three_steps",
        ),
    ),
    Mutant(
        "gc-not-applied",
        "the mixin centralizes what it applies",
        "[centralize_gradient(g, a) for g, a in zip(grads, axes)]",
        "list(grads)",
        (OPTIMIZER_TESTS + "test_golden_values_three_steps",),
    ),
    Mutant(
        "gc-mean-over-wrong-axes",
        "the mean is over each output neuron's incoming weights",
        'kernel(_[ab])?$", range(rank - 1)),',
        'kernel(_[ab])?$", range(1, rank)),',
        (LAYERS_TESTS + "test_incoming_axes_golden_values",),
    ),
    # Each kind of kernel is centralized over its own incoming axes.
    Mutant(
        "depthwise-over-all-channels",
        "a depthwise kernel is centralized per channel, over its window",
        '(depthwise|dwconv|conv_dw)([^/]*/|_)kernel$", range(rank - 2))',
        '(depthwise|dwconv|conv_dw)([^/]*/|_)kernel$", range(rank - 1))',
        (LAYERS_TESTS + "test_keras_applications",),
    ),
    Mutant(
        "keras-applications-depthwise-names-unknown",
        "keras.applications' depthwise layers are recognised by their names",
        "(depthwise|dwconv|conv_dw)([^/]*/|_)kernel$",
        "depthwise_kernel$|(depthwise_conv\\dd)[^/]*/kernel$",
        (LAYERS_TESTS + "test_keras_applications",),
    ),
    Mutant(
        "transposed-as-plain-conv",
        "a transposed convolution is centralized per output channel",
        'r"transpose[^/]*/kernel$", (*range(rank - 2), rank - 1)),',
        'r"transpose[^/]*/kernel$", range(rank - 1)),',
        (LAYERS_TESTS + "test_decoder_with_transposed_convolutions",),
    ),
    Mutant(
        "attention-heads-mixed",
        "query, key and value kernels are centralized per head and unit",
        '_attention(_\\d+)?" + ATTENTION_KERNELS, [0]),',
        '_attention(_\\d+)?" + ATTENTION_KERNELS, [0, 1]),',
        (LAYERS_TESTS + "test_transformer_block",),
    ),
    Mutant(
        "embeddings-centralized",
        "what a name does not tell, such as an embedding table, is left alone",
        "            return tuple(axes)\n    return ()\n",
        "            return tuple(axes)\n    return tuple(range(rank - 1))\n",
        # Not test_untouched_embedding_rows_stay_put: under TensorFlow an embedding's
        # gradient is IndexedSlices, which centralize_gradient() leaves alone anyway.
        (
            LAYERS_TESTS + "test_transformer_block",
            LAYERS_TESTS + "test_incoming_axes_golden_values",
        ),
    ),
    Mutant(
        "other-attention-as-outputs-last",
        "by name, the query, key and value of other attention layers are left alone",
        'r"(^|/)einsum_dense(_\\d+)?/|" + ATTENTION_KERNELS, ()),',
        'r"(^|/)einsum_dense(_\\d+)?/", ()),',
        (
            LAYERS_TESTS + "test_incoming_axes_golden_values",
            HUB_TESTS + "test_by_names_no_kernel_is_centralized_along_wrong_axes",
        ),
    ),
    Mutant(
        "any-attention-as-multi-head-attention",
        "only MultiHeadAttention's query, key and value are centralized by name",
        'r"\\b(multi_head|grouped_query)_attention(_\\d+)?"',
        'r"(^|/)\\w*attention(_\\d+)?"',
        (
            HUB_TESTS + "test_by_names_no_kernel_is_centralized_along_wrong_axes",
            LAYERS_TESTS + "test_incoming_axes_golden_values",
        ),
    ),
    # The depthwise and transposed words apply to convolution kernels only.
    Mutant(
        "transpose-rule-any-rank",
        "a name with `transpose` marks only a kernel of rank 3 or more as transposed",
        '(3, r"transpose[^/]*/kernel$"',
        '(0, r"transpose[^/]*/kernel$"',
        (
            LAYERS_TESTS + "test_incoming_axes_golden_values",
            LAYERS_TESTS + "test_golden_axes_of_kernels_whose_names_cannot_tell",
        ),
    ),
    Mutant(
        "depthwise-rule-any-rank",
        "a depthwise word marks only a kernel of rank 3 or more as depthwise",
        '(3, r"(depthwise|dwconv|conv_dw)',
        '(0, r"(depthwise|dwconv|conv_dw)',
        (LAYERS_TESTS + "test_incoming_axes_golden_values",),
    ),
    Mutant(
        "einsum-dense-as-outputs-last",
        "by name, an EinsumDense kernel under its default name is left alone",
        '(0, r"(^|/)einsum_dense(_\\d+)?/|" + ATTENTION_KERNELS, ()),',
        "(0, ATTENTION_KERNELS, ()),",
        (
            LAYERS_TESTS + "test_golden_axes_of_kernels_whose_names_cannot_tell",
            LAYERS_TESTS + "test_keras_layers_under_default_names",
        ),
    ),
    # Each variable's axes are decided when the optimizer is built, and kept for
    # the variable itself.
    Mutant(
        "axes-looked-up-by-path",
        "each variable gets its own axes, whatever its path, after a reload too",
        'self.gc_axes_of = {id(v): tuple(x["axes"]) for v, x in zip(var_list, layouts)}',
        'self.gc_axes_of = {v.path: tuple(x["axes"]) for v, x in zip(var_list, layouts)}',
        (
            "tests/test_identity.py::test_fit_centralizes_each_variable_over_its_own_axes",
            "tests/test_identity.py::test_some_of_the_variables_get_their_own_axes",
        ),
    ),
    Mutant(
        "axes-decided-in-every-apply",
        "each variable's axes are decided once, when the optimizer is built",
        "axes = [self.gc_axes_of.get(id(v), ()) for v in trainable_variables]",
        'axes = [tuple(self.gc_layout(v)["axes"]) for v in trainable_variables]',
        (OPTIMIZER_TESTS + "test_axes_are_decided_when_built_and_looked_up_in_apply",),
    ),
    Mutant(
        "apply-without-variables-left-alone",
        "apply(grads) without variables, as the JAX trainer calls it, centralizes",
        'axes = list(getattr(self, "gc_axes_of", {}).values())',
        "axes = []",
        (LAYERS_TESTS + "test_golden_axes_of_kernels_whose_names_cannot_tell",),
    ),
    Mutant(
        "generator-of-variables-exhausted",
        "variables handed as a generator are updated",
        "trainable_variables = list(trainable_variables)  # Iterated twice.",
        "pass",
        ("tests/test_identity.py::test_variables_from_a_generator_are_updated",),
    ),
    Mutant(
        "exclusion-string-as-characters",
        "a string given to gc_exclude_names is one pattern",
        "[names] if isinstance(names, str) else list(names)",
        "list(names)",
        ("tests/test_identity.py::test_a_string_of_names_to_exclude_is_one_pattern",),
    ),
    Mutant(
        "layouts-not-checked",
        "saved layouts that do not match the variables raise, naming one",
        'if len(layouts) != len(var_list) or list(layouts[index]["shape"]) != shape:',
        "if False:",
        (
            "tests/test_identity.py::test_layouts_that_do_not_match_the_variables_raise_naming_one",
        ),
    ),
    Mutant(
        "exclusions-not-saved",
        "exclusions survive save and load_model",
        'names = ("gc_conv_only", "gc_exclude_names", "gc_incoming_axes")',
        'names = ("gc_conv_only", "gc_incoming_axes")',
        (LAYERS_TESTS + "test_exclusions_survive_save_and_load",),
    ),
    Mutant(
        "layouts-not-saved",
        "the layouts read off the layers survive save and load_model",
        'names = ("gc_conv_only", "gc_exclude_names", "gc_incoming_axes")',
        'names = ("gc_conv_only", "gc_exclude_names")',
        (LAYERS_TESTS + "test_layouts_read_off_the_layers_survive_save_and_load",),
    ),
    Mutant(
        "layouts-ignored",
        "the layouts read off the layers take precedence over the names",
        "layouts = list(map(self.gc_layout, var_list) if given is None else given)",
        "layouts = list(map(self.gc_layout, var_list))",
        # Not test_gemma_attention_is_centralized_over_the_model_axis: it checks
        # incoming_axes_of() and the names, not the optimizer given the layouts.
        (
            LAYERS_TESTS + "test_layouts_read_off_the_layers_centralize_every_kernel",
            LAYERS_TESTS + "test_layouts_read_off_the_layers_survive_save_and_load",
            HUB_TESTS + "test_read_off_the_layers_every_keras_kernel_is_exact",
        ),
    ),
    Mutant(
        "exclusions-ignored",
        "excluded variables are left alone",
        "excluded = any(re.search(name, path) for name in self.gc_exclude_names)",
        "excluded = False",
        (OPTIMIZER_TESTS + "test_excluded_variables_are_left_alone",),
    ),
    Mutant(
        "conv-only-centralizes-attention",
        "GC-C leaves attention kernels alone",
        "conv = len(shape) >= 3 and not re.search(ATTENTION_KERNELS, path)",
        "conv = len(shape) >= 3",
        (LAYERS_TESTS + "test_conv_only_leaves_attention_and_dense_kernels_alone",),
    ),
    Mutant(
        "attention-gate-as-outputs-last",
        "the gate of MultiHeadAttention and GroupQueryAttention is centralized over "
        "its inputs, or left alone",
        "(query|key|value|gate|attention_output)",
        "(query|key|value|attention_output)",
        (LAYERS_TESTS + "test_sweep_of_keras_layers_and_their_options",),
    ),
    Mutant(
        "attention-output-shape-axes",
        "an attention output of several axes is centralized over heads and head "
        "size only",
        "range(min(rank, 3) - 1)",
        "range(rank - 1)",
        (LAYERS_TESTS + "test_sweep_of_keras_layers_and_their_options",),
    ),
    Mutant(
        "built-lookup-misses-subsets",
        "after build, apply() centralizes the variables it is handed, some of them too",
        "axes = [self.gc_axes_of.get(id(v), ()) for v in trainable_variables]",
        "axes = list(self.gc_axes_of.values())",
        ("tests/test_identity.py::test_some_of_the_variables_get_their_own_axes",),
    ),
    Mutant(
        "gcrmsprop-without-mixin",
        "GCRMSprop is RMSprop with the mixin",
        "class GCRMSprop(GradientCentralization, type(keras.optimizers.RMSprop())):",
        "class GCRMSprop(type(keras.optimizers.RMSprop())):",
        (OPTIMIZER_TESTS + "test_golden_values_three_steps",),
    ),
    # The keystone: the GC arm is trained with GCRMSprop.
    Mutant(
        "gc-arm-is-rmsprop",
        "the second arm of every pair uses GCRMSprop",
        '"gc_rmsprop": ("Using Gradient Centralization", GCRMSprop)',
        '"gc_rmsprop": ("Using Gradient Centralization", keras.optimizers.RMSprop)',
        (
            SCRIPT_TESTS + "test_the_arms_are_rmsprop_and_gcrmsprop",
            SCRIPT_TESTS + "test_arms_start_equal_and_train_differently",
        ),
    ),
    Mutant(
        "first-gc-run-is-rmsprop",
        "the notebook's 'with GC' run uses GCRMSprop",
        'first_pair["gc_rmsprop"] = train_arm(GCRMSprop, args.seed, data, args)',
        'first_pair["gc_rmsprop"] = train_arm(keras.optimizers.RMSprop, args.seed, data, args)',
        (SCRIPT_TESTS + "test_arms_start_equal_and_train_differently",),
    ),
    # The test figures come from the held-out test split.
    Mutant(
        "test-split",
        "test loss and accuracy are measured on the test split",
        "model.evaluate(test_ds.batch(args.batch_size)",
        "model.evaluate(train_ds.batch(args.batch_size)",
        (SCRIPT_TESTS + "test_test_figures_come_from_the_test_split",),
    ),
    Mutant(
        "auc-on-training-pictures",
        "the test AUC is measured on the test split",
        '"test": {key: test[key] for key in ("loss", "accuracy", "auc")},',
        '"test": {**{key: test[key] for key in ("loss", "accuracy")}, "auc": '
        "model.evaluate(train_ds.batch(args.batch_size), return_dict=True)"
        '["auc"]},',
        (SCRIPT_TESTS + "test_test_figures_come_from_the_test_split",),
    ),
    Mutant(
        "auc-lower-is-better",
        "a higher test AUC counts as better in the verdict",
        '{"auc": True, "accuracy": True, "loss": False}',
        '{"auc": False, "accuracy": True, "loss": False}',
        (SCRIPT_TESTS + "test_summary_is_gc_minus_plain_with_verdicts",),
    ),
    Mutant(
        "auc-not-in-summary",
        "the interval and verdict cover the test AUC",
        '{"auc": True, "accuracy": True, "loss": False}',
        '{"accuracy": True, "loss": False}',
        (SCRIPT_TESTS + "test_summary_is_gc_minus_plain_with_verdicts",),
    ),
    # The times are each epoch's wall time.
    Mutant(
        "epoch-time-offset",
        "each epoch time is that epoch's wall time",
        "self.times.append(time() - self.epoch_time_start)",
        "self.times.append(time() - self.epoch_time_start + 0.5)",
        (SCRIPT_TESTS + "test_epoch_times_are_each_epochs_wall_time",),
    ),
    Mutant(
        "epoch-time-from-training-start",
        "each epoch time is that epoch's wall time",
        "    def on_epoch_begin(self, epoch, logs=None):\n"
        "        self.epoch_time_start = time()\n",
        "    def on_epoch_begin(self, epoch, logs=None):\n"
        "        self.epoch_time_start = getattr(self, 'epoch_time_start', time())\n",
        (SCRIPT_TESTS + "test_epoch_times_are_each_epochs_wall_time",),
    ),
    Mutant(
        "training-time-not-sum",
        "training time is the sum of the warm epochs' times",
        '"training_time": sum(timer.times[1:] or timer.times),',
        '"training_time": max(timer.times[1:] or timer.times),',
        (SCRIPT_TESTS + "test_epoch_times_are_each_epochs_wall_time",),
    ),
    Mutant(
        "training-time-counts-the-first-epoch",
        "the first epoch (warm-up, tracing) is left out of the training time",
        '"training_time": sum(timer.times[1:] or timer.times),',
        '"training_time": sum(timer.times),',
        (
            SCRIPT_TESTS + "test_epoch_times_are_each_epochs_wall_time",
            SCRIPT_TESTS + "test_timed_epochs_do_the_same_work_in_both_arms",
        ),
    ),
    Mutant(
        "no-warm-up",
        "the process's first training is an untimed warm-up, not the first arm",
        "    train_arm(keras.optimizers.RMSprop, args.seed, data, args, epochs=1)\n",
        "",
        (SCRIPT_TESTS + "test_the_process_warms_up_before_the_first_pair",),
    ),
    Mutant(
        "warm-up-trains-every-epoch",
        "the warm-up trains one epoch",
        "epochs=epochs or args.epochs,",
        "epochs=args.epochs,",
        (SCRIPT_TESTS + "test_the_process_warms_up_before_the_first_pair",),
    ),
    Mutant(
        "training-time-of-one-epoch-is-zero",
        "with one epoch, that epoch is the training time",
        '"training_time": sum(timer.times[1:] or timer.times),',
        '"training_time": sum(timer.times[1:]),',
        (SCRIPT_TESTS + "test_one_epoch_is_its_own_training_time",),
    ),
    # Both arms start from the same weights and see the same batches.
    Mutant(
        "fingerprint-after-training",
        "the fingerprint is of the initial weights",
        '"initial_weights": initial_weights,',
        '"initial_weights": weights_fingerprint(model),',
        (SCRIPT_TESTS + "test_fingerprint_is_of_the_initial_weights",),
    ),
    Mutant(
        "fingerprint-skips-a-weight",
        "the fingerprint covers every weight",
        "for w in model.get_weights())",
        "for w in model.get_weights()[:-1])",
        (SCRIPT_TESTS + "test_fingerprint_covers_every_weight",),
    ),
    Mutant(
        "arms-seeded-differently",
        "both arms start from the same weights, augmentation and dropout draws",
        "keras.utils.set_random_seed(seed)\n    model = build_training_model()",
        "keras.utils.set_random_seed(seed + (optimizer_class is GCRMSprop))\n"
        "    model = build_training_model()",
        (SCRIPT_TESTS + "test_arms_differ_only_in_the_optimizer",),
    ),
    Mutant(
        "arms-shuffled-differently",
        "both arms see the same batches",
        "train_ds.shuffle(1024, seed=seed)",
        "train_ds.shuffle(1024, seed=seed + (optimizer_class is GCRMSprop))",
        (SCRIPT_TESTS + "test_pictures_are_shuffled_alike_in_both_arms",),
    ),
    Mutant(
        "not-shuffled",
        "the training pictures are shuffled",
        "train_ds.shuffle(1024, seed=seed)",
        "train_ds.shuffle(1, seed=seed)",
        (SCRIPT_TESTS + "test_pictures_are_shuffled_alike_in_both_arms",),
    ),
    Mutant(
        "shuffle-without-explicit-seed",
        "both arms see the same batches",
        "train_ds.shuffle(1024, seed=seed)",
        "train_ds.shuffle(1024)",
        (SCRIPT_TESTS + "test_pictures_are_shuffled_alike_in_both_arms",),
        equivalent="keras.utils.set_random_seed(seed), called just before, also "
        "seeds tf.data's shuffle: the order stays the same for both arms",
    ),
    Mutant(
        "one-pass-per-epoch",
        "an epoch is one pass over the training images",
        "math.ceil(len(train_ds) / args.batch_size)",
        "len(train_ds) // args.batch_size",
        (SCRIPT_TESTS + "test_printed_sections_in_order",),
    ),
    # runs[i].seed and the JSON report.
    Mutant(
        "recorded-seed-off-by-one",
        "runs[i].seed is the seed pair i was trained from",
        "        add_pair(seed, records)\n",
        "        add_pair(seed + 1, records)\n",
        (SCRIPT_TESTS + "test_each_pair_is_trained_from_its_recorded_seed",),
    ),
    Mutant(
        "later-pairs-reuse-the-first-seed",
        "pair i is trained from seed + i",
        "train_arm(cls, seed, data, args) for k, (_, cls)",
        "train_arm(cls, args.seed, data, args) for k, (_, cls)",
        (SCRIPT_TESTS + "test_each_pair_is_trained_from_its_recorded_seed",),
    ),
    Mutant(
        "first-pair-not-announced",
        "every pair is announced, the first included",
        'print(f"Pair 1/{args.runs}, seed {args.seed}")',
        "pass",
        (SCRIPT_TESTS + "test_printed_sections_in_order",),
    ),
    Mutant(
        "pairs-numbered-from-0",
        "pairs are numbered from 1 everywhere",
        "enumerate(range(args.seed + 1, args.seed + args.runs), 2)",
        "enumerate(range(args.seed + 1, args.seed + args.runs), 1)",
        (SCRIPT_TESTS + "test_printed_sections_in_order",),
    ),
    Mutant(
        "json-only-at-the-end",
        "the report is written after every pair",
        "    if args.json:\n        backend =",
        "    if args.json and len(runs) == args.runs:\n        backend =",
        (SCRIPT_TESTS + "test_interrupted_run_keeps_every_finished_pair",),
    ),
    Mutant(
        "nan-kept-in-json",
        "the report is strict JSON (NaN written as null)",
        "json.loads(json.dumps(report), parse_constant=lambda name: None)",
        "json.loads(json.dumps(report))",
        (SCRIPT_TESTS + "test_diverging_run_writes_strict_json_and_undefined_verdict",),
    ),
    # The interval and the verdict.
    Mutant(
        "verdict-swapped",
        "the verdict follows the interval",
        'return "better" if (low > 0) == higher_is_better else "worse"',
        'return "worse" if (low > 0) == higher_is_better else "better"',
        (SCRIPT_TESTS + "test_interval_with_significance",),
    ),
    Mutant(
        "t-quantile",
        "the interval is a 95% t-interval",
        "stats.t.ppf((1 + confidence) / 2,",
        "stats.t.ppf(confidence,",
        (SCRIPT_TESTS + "test_interval_without_significance",),
    ),
    Mutant(
        "standard-deviation-for-error",
        "the interval uses the standard error of the mean difference",
        "stats.sem(differences)",
        "np.std(differences, ddof=1)",
        (SCRIPT_TESTS + "test_interval_without_significance",),
    ),
    Mutant(
        "difference-plain-minus-gc",
        "the difference is GC minus plain",
        "[gc - plain for plain, gc in figures]",
        "[plain - gc for plain, gc in figures]",
        (SCRIPT_TESTS + "test_summary_is_gc_minus_plain_with_verdicts",),
    ),
    Mutant(
        "higher-loss-is-better",
        "a lower test loss is better",
        '"accuracy": True, "loss": False}',
        '"accuracy": True, "loss": True}',
        (SCRIPT_TESTS + "test_summary_is_gc_minus_plain_with_verdicts",),
    ),
    Mutant(
        "no-undefined-verdict",
        "a diverged run makes the verdict undefined",
        "if not (math.isfinite(low) and math.isfinite(high)):",
        "if False:",
        (SCRIPT_TESTS + "test_single_run_and_diverged_runs_support_no_claim",),
    ),
    Mutant(
        "single-run-claims",
        "one pair gives one table and the single-run line",
        "if num_runs == 1:",
        "if num_runs == 0:",
        (SCRIPT_TESTS + "test_summary_text_for_one_pair_and_for_a_diverged_run",),
    ),
    # The figures printed.
    Mutant(
        "training-loss-first-epoch",
        "the training loss shown is the last epoch's",
        '"Training loss": lambda record: record["history"]["loss"][-1],',
        '"Training loss": lambda record: record["history"]["loss"][0],',
        (SCRIPT_TESTS + "test_pair_table_shows_each_figure_in_its_column",),
    ),
    Mutant(
        "test-accuracy-from-training",
        "the test accuracy shown is the test split's",
        '"Test accuracy": lambda record: record["test"]["accuracy"],',
        '"Test accuracy": lambda record: record["history"]["accuracy"][-1],',
        (SCRIPT_TESTS + "test_pair_table_shows_each_figure_in_its_column",),
    ),
    Mutant(
        "test-auc-shows-accuracy",
        "the test AUC shown is the test split's AUC",
        '"Test AUC": lambda record: record["test"]["auc"],',
        '"Test AUC": lambda record: record["test"]["accuracy"],',
        (SCRIPT_TESTS + "test_pair_table_shows_each_figure_in_its_column",),
    ),
    Mutant(
        "training-time-last-epoch",
        "the training time shown is the whole run's",
        '"Training time, warm epochs (s)": lambda record: record["training_time"],',
        '"Training time, warm epochs (s)": lambda record: record["epoch_times"][-1],',
        (SCRIPT_TESTS + "test_pair_table_shows_each_figure_in_its_column",),
    ),
    Mutant(
        "columns-swapped",
        "each column is its optimizer's",
        'f"{figure(records[key]):>36.4g}" for key in arms)',
        'f"{figure(records[key]):>36.4g}" for key in reversed(arms))',
        (SCRIPT_TESTS + "test_pair_table_shows_each_figure_in_its_column",),
    ),
    Mutant(
        "test-size-from-training-split",
        "the printed split sizes are the data's",
        'test images: {len(test_ds)}")',
        'test images: {len(train_ds)}")',
        (SCRIPT_TESTS + "test_split_sizes_come_from_the_data",),
    ),
    Mutant(
        "demo-not-centralized",
        "the demonstration shows centralized column means",
        "ops.mean(centralized, 0)",
        "ops.mean(kernel_gradient, 0)",
        (SCRIPT_TESTS + "test_printed_sections_in_order",),
    ),
    Mutant(
        "plot-first-run-not-mean",
        "the curves are the mean over the pairs",
        "curves.mean(axis=0)",
        "curves[0]",
        (SCRIPT_TESTS + "test_plot_draws_the_mean_curve_and_a_band",),
    ),
    # The model and its augmentation.
    Mutant(
        "rotation-factor",
        "the augmentation is the original's",
        "layers.RandomRotation(0.3)",
        "layers.RandomRotation(0.1)",
        (SCRIPT_TESTS + "test_training_model_uses_keras_stock_augmentation_layers",),
    ),
    Mutant(
        "zoom-removed",
        "the augmentation is the original's",
        "        layers.RandomZoom(0.2),\n",
        "",
        (SCRIPT_TESTS + "test_training_model_uses_keras_stock_augmentation_layers",),
    ),
    Mutant(
        "no-rescaling",
        "images are rescaled to [0, 1]",
        "layers.Rescaling(1.0 / 255)",
        "layers.Rescaling(1.0)",
        (SCRIPT_TESTS + "test_training_model_uses_keras_stock_augmentation_layers",),
    ),
    Mutant(
        "fit-warns-about-shuffle",
        "a default run prints no warning of the example's making",
        "        shuffle=False,  # The pipeline shuffles: `fit` cannot shuffle a tf.data one.\n",
        "",
        ("tests/test_notebook.py::test_script_runs_with_no_flags",),
    ),
    # Bad input and the offline message.
    Mutant(
        "infinite-learning-rate-accepted",
        "a non-finite learning rate is rejected with exit 2",
        "if value is not None and not 0 < value < math.inf:",
        "if value is not None and not 0 < value:",
        (SCRIPT_TESTS + "test_bad_values_exit_2",),
    ),
    Mutant(
        "help-without-default",
        "each flag's help says its default, as docs/reference.md does",
        "use += f\" (default: {'off' if default is None else default})\"",
        "pass",
        (SCRIPT_TESTS + "test_help_says_what_the_reference_says",),
    ),
    Mutant(
        "negative-seed-accepted",
        "a negative seed is rejected with exit 2",
        "if not 0 <= args.seed <= 2**32 - args.runs:",
        "if args.seed > 2**32 - args.runs:",
        (SCRIPT_TESTS + "test_bad_values_exit_2",),
    ),
    Mutant(
        "plot-format-unchecked",
        "an unsupported --plot extension is rejected before training",
        "if args.plot and os.path.splitext(args.plot)[1][1:].lower() not in formats:",
        "if False:",
        (SCRIPT_TESTS + "test_bad_values_exit_2",),
    ),
    Mutant(
        "directory-accepted-as-report",
        "an existing directory as --json is rejected before training",
        "if os.path.isdir(path) or not os.access(folder, os.W_OK):",
        "if not os.access(folder, os.W_OK):",
        (SCRIPT_TESTS + "test_bad_values_exit_2",),
    ),
    Mutant(
        "offline-error-escapes",
        "an unreachable dataset gives a message and exit 1",
        "except Exception as error:",
        "except ModuleNotFoundError as error:",
        (SCRIPT_TESTS + "test_unreachable_dataset_explains_and_exits_1",),
    ),
    # The companion, gc_layouts.py: layouts read off the layers.
    Mutant(
        "einsum-incoming-axes-inverted",
        "an EinsumDense kernel's incoming axes are the letters its output lacks",
        "letter not in output]",
        "letter in output]",
        (
            LAYERS_TESTS + "test_layouts_read_off_the_layers_centralize_every_kernel",
            HUB_TESTS + "test_read_off_the_layers_every_keras_kernel_is_exact",
        ),
        file=COMPANION,
    ),
    Mutant(
        "einsum-lora-b-left-alone",
        "an EinsumDense's lora_kernel_b is centralized over the LoRA rank",
        '"lora_kernel_b": [0]}',
        '"lora_kernel_b": []}',
        (HUB_TESTS + "test_read_off_the_layers_every_keras_kernel_is_exact",),
        file=COMPANION,
    ),
    Mutant(
        "einsum-lora-a-left-alone",
        "an EinsumDense's lora_kernel_a is centralized over the kernel's incoming axes",
        '"lora_kernel_a": incoming,',
        '"lora_kernel_a": [],',
        (HUB_TESTS + "test_read_off_the_layers_every_keras_kernel_is_exact",),
        file=COMPANION,
    ),
    Mutant(
        "own-layers-judged-by-name",
        "the weights of a layer of another class than Keras' are left alone",
        "if not keras_classes or keras_classes[0] in (keras.Layer, keras.Model):",
        "if not keras_classes:",
        (
            LAYERS_TESTS
            + "test_layouts_read_off_the_layers_leave_layers_of_their_own_alone",
        ),
        file=COMPANION,
    ),
    Mutant(
        "walk-misses-lists",
        "the layers held in lists are found",
        "values if isinstance(values, (list, tuple)) else [values]",
        "values if isinstance(values, tuple) else [values]",
        (
            LAYERS_TESTS + "test_layouts_read_off_the_layers_centralize_every_kernel",
            HUB_TESTS + "test_read_off_the_layers_every_keras_kernel_is_exact",
        ),
        file=COMPANION,
    ),
    Mutant(
        "unexported-cells-left-alone",
        "the companion reads the layouts of Keras' own classes that keras.layers "
        "does not export (ConvLSTM's cell)",
        'c.__module__.startswith("keras.")',
        "getattr(keras.layers, c.__name__, None) is c",
        (LAYERS_TESTS + "test_sweep_of_keras_layers_and_their_options",),
        file=COMPANION,
    ),
    Mutant(
        "embedding-lora-b-left-alone",
        "an Embedding's LoRA (rank, features) factor is centralized over the rank",
        '("reverse_embeddings", "lora_embeddings_b")',
        '("reverse_embeddings",)',
        (LAYERS_TESTS + "test_sweep_of_keras_layers_and_their_options",),
        file=COMPANION,
    ),
    Mutant(
        "layers-visited-by-path",
        "the companion visits every layer once, containers whose path is None too",
        "if id(layer) in visited:  # Each layer once, cycles or not.\n"
        "            continue\n"
        "        visited.add(id(layer))",
        "if layer.path in visited:  # Each layer once, cycles or not.\n"
        "            continue\n"
        "        visited.add(layer.path)",
        (LAYERS_TESTS + "test_layouts_read_off_the_layers_of_containers_never_called",),
        file=COMPANION,
    ),
]


def copy_repository(destination):
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".pytest_cache", "*.pyc"
    )
    shutil.copytree(ROOT, destination, ignore=ignore)


def run_tests(folder, tests):
    """Runs `tests` in `folder`; returns (passed, first failing test, seconds)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    failed = re.findall(
        r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", result.stdout, re.MULTILINE
    )
    seconds = time.perf_counter() - start
    return result.returncode == 0, (failed or [f"exit {result.returncode}"])[0], seconds


def read_sources(mutants):
    """The text of each file the mutants edit, by path."""
    sources = {}
    for mutant in mutants:
        if mutant.file not in sources:
            with open(os.path.join(ROOT, mutant.file)) as file:
                sources[mutant.file] = file.read()
    return sources


def stale_mutants(mutants, sources):
    """The names of the mutants whose `old` no longer occurs exactly once."""
    return [m.name for m in mutants if sources[m.file].count(m.old) != 1]


def check(mutants):
    sources = read_sources(mutants)
    stale = stale_mutants(mutants, sources)
    if stale:
        sys.exit(f"The code changed; these mutants no longer apply: {stale}")
    with tempfile.TemporaryDirectory() as folder:
        copy = os.path.join(folder, "repository")
        copy_repository(copy)
        tests = sorted({test for mutant in mutants for test in mutant.tests})
        print(f"Baseline: {len(tests)} tests on the unmutated example ...", flush=True)
        passed, failure, seconds = run_tests(copy, tests)
        if not passed:
            sys.exit(f"The unmutated example fails {failure}: fix that first.")
        print(f"Baseline passed in {seconds:.0f} s.\n", flush=True)
        wrong = []
        for mutant in mutants:
            with open(os.path.join(copy, mutant.file), "w") as file:
                file.write(sources[mutant.file].replace(mutant.old, mutant.new))
            passed, failure, seconds = run_tests(copy, mutant.tests)
            for name, source in sources.items():  # Every file as it was.
                with open(os.path.join(copy, name), "w") as file:
                    file.write(source)
            if mutant.equivalent:
                outcome = "survived (equivalent)" if passed else "KILLED (equivalent?)"
            else:
                outcome = "SURVIVED" if passed else f"killed by {failure}"
            if passed != bool(mutant.equivalent):
                wrong.append(mutant.name)
            print(f"{mutant.name:<38} {seconds:5.0f} s  {outcome}", flush=True)
    print(f"\n{len(mutants)} mutants, {len(wrong)} not as expected: {wrong or 'none'}")
    return 1 if wrong else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Mutation check of the example.")
    parser.add_argument("--list", action="store_true", help="list the mutants")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these mutants")
    args = parser.parse_args(argv)
    names = {mutant.name for mutant in MUTANTS}
    unknown = set(args.only or []) - names
    if unknown:
        parser.error(f"unknown mutants: {sorted(unknown)}")
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        stale = stale_mutants(mutants, read_sources(mutants))
        for mutant in mutants:
            kind = " (equivalent)" if mutant.equivalent else ""
            kind += " (STALE: edit no longer applies)" if mutant.name in stale else ""
            where = "" if mutant.file == EXAMPLE else f" [{mutant.file}]"
            print(
                f"{mutant.name}{kind}{where}: {mutant.claim}; {', '.join(mutant.tests)}"
            )
        return 1 if stale else 0
    started = time.perf_counter()
    status = check(mutants)
    print(f"Total time: {(time.perf_counter() - started) / 60:.1f} min")
    return status


if __name__ == "__main__":
    sys.exit(main())
