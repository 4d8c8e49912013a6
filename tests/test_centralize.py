"""The centralization rule on hard-coded values, in Keras' (..., in, out) layout.

Which axes each kind of kernel gets is in tests/test_layers.py.
"""

import keras
import ml_dtypes
import numpy as np
import pytest

from gradient_centralization import centralize_gradient


def all_but_last(grad):
    return tuple(range(len(grad.shape) - 1))


def centralized(values, dtype="float32"):
    grad = keras.ops.convert_to_tensor(np.array(values, dtype=dtype))
    return keras.ops.convert_to_numpy(centralize_gradient(grad, all_but_last(grad)))


def test_dense_kernel_columns_get_zero_mean():
    # optax's centralize example [[1, 2], [3, 4]] -> [[-.5, .5], [-.5, .5]] keeps
    # axis 0 (PyTorch layout); in Keras layout the same kernel is its transpose.
    np.testing.assert_allclose(
        centralized([[1.0, 3.0], [2.0, 4.0]]), [[-0.5, -0.5], [0.5, 0.5]]
    )


def test_conv_kernel_mean_over_space_and_input_channels():
    # Shape (2, 1, 2, 2): 2x1 window, 2 input channels, 2 output channels.
    grad = [[[[1.0, 10.0], [2.0, 20.0]]], [[[3.0, 30.0], [6.0, 60.0]]]]
    expected = [[[[-2.0, -20.0], [-1.0, -10.0]]], [[[0.0, 0.0], [3.0, 30.0]]]]
    np.testing.assert_allclose(centralized(grad), expected)


@pytest.mark.parametrize(
    "shape",
    [(5,), (1, 4), (1, 1, 1, 8)],
    ids=["rank-1", "dense-fan-in-1", "conv-fan-in-1"],
)
def test_left_alone(shape):
    values = np.arange(1, np.prod(shape) + 1, dtype="float32").reshape(shape)
    np.testing.assert_array_equal(centralized(values), values)


def test_none_is_left_alone():
    assert centralize_gradient(None, (0,)) is None


def test_no_axes_leave_the_gradient_alone():
    values = np.array([[1.0, 3.0], [2.0, 4.0]], dtype="float32")
    result = centralize_gradient(keras.ops.convert_to_tensor(values), ())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(result), values)


def test_mean_over_the_given_axes_only():
    # (2, 2, 2): centralized over axis 1 alone, then over axes 0 and 2.
    grad = np.arange(8, dtype="float32").reshape(2, 2, 2)
    tensor = keras.ops.convert_to_tensor(grad)
    over_1 = keras.ops.convert_to_numpy(centralize_gradient(tensor, (1,)))
    np.testing.assert_allclose(over_1, [[[-1, -1], [1, 1]], [[-1, -1], [1, 1]]])
    over_0_2 = keras.ops.convert_to_numpy(centralize_gradient(tensor, (0, 2)))
    np.testing.assert_allclose(
        over_0_2, [[[-2.5, -1.5], [-2.5, -1.5]], [[1.5, 2.5], [1.5, 2.5]]]
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_keeps_dtype(dtype):
    grad = keras.ops.cast(np.array([[1.0, 3.0], [2.0, 4.0]]), dtype)
    result = centralize_gradient(grad, (0,))
    assert keras.backend.standardize_dtype(result.dtype) == dtype
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(result, "float32")),
        [[-0.5, -0.5], [0.5, 0.5]],
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_mean_is_taken_in_full_precision(dtype):
    # 2,304 values near 1.0 per output neuron, exact in both dtypes (multiples of
    # 2**-7). A running sum kept in bfloat16 stalls at 256, far from 2,304.
    rng = np.random.default_rng(0)
    values = 1.0 + rng.integers(-8, 9, size=(3, 3, 256, 4)) / 128.0
    low = values.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16)
    wide = low.astype("float32")
    expected = (wide - wide.mean(axis=(0, 1, 2), keepdims=True)).astype(low.dtype)
    result = centralize_gradient(keras.ops.convert_to_tensor(low), (0, 1, 2))
    assert keras.backend.standardize_dtype(result.dtype) == dtype
    result = keras.ops.convert_to_numpy(result)
    # To 1 ulp of the dtype: the float32 mean is itself rounded, and backends sum
    # and divide in their own order, so a value on a rounding boundary of the low
    # dtype may round either way (in Keras 3.15.1 all three backends are exact).
    # A mean rounded to the low dtype is off by up to 4 ulps on every backend.
    ulp = np.abs(np.spacing(expected.astype(low.dtype))).astype("float32")
    difference = np.abs(result.astype("float32") - expected.astype("float32"))
    assert (difference <= ulp).all(), difference.max()
    assert (difference == 0).mean() > 0.99
