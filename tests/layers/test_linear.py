"""Linear: contract, NumPy reference, weight normalisation."""
import numpy as np
import pytest

from samplenet.layers.linear import Linear, frozen_kernels
from samplenet.testing import assert_layer_contract


@pytest.mark.parametrize("weight_norm", [False, True])
def test_linear_contract_and_numpy_reference(weight_norm):
    layer = Linear(6, weight_norm=weight_norm)
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    output = assert_layer_contract(layer, x)
    kernel = np.asarray(layer.kernel())
    np.testing.assert_allclose(output, x @ kernel + np.asarray(layer.b), atol=1e-5)


def test_linear_weight_norm_columns_have_gain_norm():
    layer = Linear(5, weight_norm=True)
    layer.build((None, 7))
    layer.g.assign(np.arange(1, 6, dtype=np.float32))
    np.testing.assert_allclose(np.linalg.norm(np.asarray(layer.kernel()), axis=0),
                               np.arange(1, 6), rtol=1e-5)


def test_linear_rejects_bad_units():
    with pytest.raises(ValueError, match="units"):
        Linear(0)


def test_frozen_kernels_hold_only_inside_the_block():
    layer = Linear(3, weight_norm=True)
    layer.build((None, 4))
    before = np.asarray(layer.kernel())
    with frozen_kernels([layer]):
        layer.g.assign(2.0 * np.ones(3, np.float32))
        np.testing.assert_array_equal(np.asarray(layer.kernel()), before)
    np.testing.assert_allclose(np.asarray(layer.kernel()), 2.0 * before / np.linalg.norm(
        before, axis=0), rtol=1e-5)
