import math

import numpy as np
import pytest

from dcnn_helpers import validation


def test_integer_accepts_python_and_numpy_integers():
    assert validation.integer("n", 3) == 3
    assert type(validation.integer("n", np.int64(3), minimum=1)) is int


@pytest.mark.parametrize("value", [True, 2.0, "3", None, np.float64(2.0)])
def test_integer_refuses_other_kinds(value):
    with pytest.raises(TypeError, match="^n must be an integer"):
        validation.integer("n", value)


def test_integer_bounds_name_the_argument():
    with pytest.raises(ValueError, match=r"^epochs=0 must be at least 1"):
        validation.integer("epochs", 0, minimum=1)
    with pytest.raises(ValueError, match=r"^k=11 must be at most 10"):
        validation.integer("k", 11, maximum=10)


def test_real_accepts_numpy_scalars_and_ints():
    assert validation.real("lr", np.float32(0.5), 0, 1) == 0.5
    assert type(validation.real("lr", 2, 0)) is float


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_real_refuses_non_finite(value):
    with pytest.raises(ValueError, match="^lr=.* must be a finite number"):
        validation.real("lr", value)


def test_real_open_and_closed_ends():
    assert validation.real("p", 0.0, 0, 1) == 0.0
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\]"):
        validation.real("p", 0.0, 0, 1, low_open=True)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\)"):
        validation.real("p", 1.0, 0, 1, high_open=True)
    with pytest.raises(TypeError, match="^p must be a real number"):
        validation.real("p", "0.5")


def test_choice_lists_what_is_allowed():
    assert validation.choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"^mode='c' is not allowed; choose one of 'a', 'b'"):
        validation.choice("mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match="not allowed"):
        validation.choice("mode", ["a"], {"a"})


def test_integers_checks_every_entry():
    assert validation.integers("widths", [np.int32(4), 5], minimum=1) == (4, 5)
    with pytest.raises(ValueError, match=r"^widths\[1\]=0 must be at least 1"):
        validation.integers("widths", [4, 0], minimum=1)
    with pytest.raises(TypeError, match="^widths must be a sequence"):
        validation.integers("widths", 4)
    with pytest.raises(ValueError, match="at least 1"):
        validation.integers("widths", [])


def test_memory_refuses_with_an_estimate():
    validation.memory("a grid", 1000)
    with pytest.raises(ValueError, match=r"a grid would need about 7 TiB"):
        validation.memory("a grid", 7 * 2**40)
