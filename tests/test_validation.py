"""The shared argument checks of samplenet.validation."""
import numpy as np
import pytest

from samplenet.validation import check_bool, check_int


@pytest.mark.parametrize("value", [True, False])
def test_check_bool_accepts_bools(value):
    check_bool("flag", value)


@pytest.mark.parametrize("value", [1, 0, "true", None, np.bool_(True)])
def test_check_bool_rejects_other_values_naming_the_argument(value):
    with pytest.raises(ValueError, match=r"flag must be true or false, got"):
        check_bool("flag", value)


def test_check_int_converts_numpy_integers_and_rejects_bools_and_small_values():
    assert check_int("n", np.int64(3), 1) == 3 and type(check_int("n", np.int64(3), 1)) is int
    for value in (True, 0, 2.0):
        with pytest.raises(ValueError, match=r"n must be a positive integer"):
            check_int("n", value, 1)
