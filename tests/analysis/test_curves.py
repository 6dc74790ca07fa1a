"""Learning-curve summaries on hand-made curves."""

from __future__ import annotations

import numpy as np
import pytest

from medssl.analysis.curves import curve_auc, steps_to_fraction


def test_curve_auc_is_mean_value_over_training() -> None:
    steps = np.array([0.0, 10.0, 20.0])
    assert curve_auc(steps, np.full(3, 0.7)) == pytest.approx(0.7)
    assert curve_auc(steps, np.array([0.0, 0.5, 1.0])) == pytest.approx(0.5)
    # uneven steps: trapezoids (0→0.5 over 10, 0.5→0.5 over 30) / 40
    assert curve_auc(np.array([0, 10, 40]), np.array([0.0, 0.5, 0.5])) == pytest.approx(
        (2.5 + 15) / 40
    )


def test_curve_auc_ignores_order_and_handles_short_curves() -> None:
    steps, values = np.array([20, 0, 10]), np.array([1.0, 0.0, 0.5])
    assert curve_auc(steps, values) == pytest.approx(0.5)
    assert curve_auc(np.array([5]), np.array([0.3])) == pytest.approx(0.3)
    assert np.isnan(curve_auc(np.array([]), np.array([])))


def test_faster_learner_has_larger_auc_at_same_final_value() -> None:
    steps = np.linspace(0, 100, 21)
    fast, slow = 1 - np.exp(-steps / 5), 1 - np.exp(-steps / 30)
    fast[-1] = slow[-1] = 0.99
    assert curve_auc(steps, fast) > curve_auc(steps, slow)
    assert steps_to_fraction(steps, fast) < steps_to_fraction(steps, slow)


def test_steps_to_fraction_hand_example() -> None:
    steps = np.array([0, 10, 20, 30])
    values = np.array([0.0, 0.5, 0.96, 1.0])
    assert steps_to_fraction(steps, values) == 20
    assert steps_to_fraction(steps, values, fraction=0.5) == 10
    assert steps_to_fraction(steps[::-1], values[::-1]) == 20
    assert steps_to_fraction(steps, values, final=0.5) == 10
    assert np.isnan(steps_to_fraction(steps, values, final=2.0))
    assert np.isnan(steps_to_fraction(np.array([]), np.array([])))


def test_curve_settled_by_hand() -> None:
    from medssl.analysis.curves import curve_settled

    steps = np.arange(0, 1001, 100)  # last 20 % of training: steps 800–1000
    rising = np.linspace(0.2, 0.9, steps.size)
    assert curve_settled(steps, rising) is False  # moves 0.14 over the tail
    flat_tail = np.r_[np.linspace(0.2, 0.8, 8), [0.805, 0.809, 0.801]]
    assert curve_settled(steps, flat_tail) is True  # range 0.008 over steps 800–1000
    late_jump = np.r_[np.linspace(0.2, 0.8, 8), [0.805, 0.809, 0.82]]
    assert curve_settled(steps, late_jump) is False
    assert curve_settled(steps, flat_tail, tolerance=0.008) is False  # strict, configurable
    # a window that starts between validations: the curve interpolated at its start
    # (step 960 of 1200, between 950 → 0.690 and 1000 → 0.692: 0.6904)
    late = np.array([0, 950, 1000, 1050, 1200])
    assert curve_settled(late, np.array([0.1, 0.690, 0.692, 0.686, 0.689])) is True
    # 950 → 0.50, 1000 → 0.69: at 960 the curve is still at 0.538, so it moved
    assert curve_settled(late, np.array([0.1, 0.50, 0.69, 0.686, 0.689])) is False
    assert curve_settled(np.array([5]), np.array([0.3])) is None
    assert curve_settled(np.array([900, 1000]), np.array([0.3, 0.3])) is True
    assert curve_settled(np.array([950, 990]), np.array([0.3, 0.5])) is False


def test_tail_rise_tells_a_rising_curve_from_a_noisy_plateau() -> None:
    from medssl.analysis.curves import curve_settled, tail_rise

    steps = np.arange(0, 1001, 100)  # window: steps 800–1000
    rising = np.linspace(0.2, 0.9, steps.size)  # 0.07 per 100 steps
    assert tail_rise(steps, rising) == pytest.approx(0.14)
    # a plateau whose validations jitter by ±0.01: fails the range rule, rises ≈ 0
    noisy = np.r_[np.linspace(0.2, 0.8, 8), [0.79, 0.81, 0.79]]
    assert curve_settled(steps, noisy) is False
    assert abs(tail_rise(steps, noisy)) < 0.005
    falling = np.r_[np.linspace(0.2, 0.8, 9), [0.78, 0.76]]
    assert tail_rise(steps, falling) == pytest.approx(-0.04)
    # the window starts between validations: the interpolated start point counts
    late = np.array([0, 950, 1000, 1050, 1200])
    # window 960–1200: points (960, 0.538), (1000, 0.69), (1050, 0.69), (1200, 0.69)
    s = np.array([960.0, 1000, 1050, 1200])
    v = np.array([0.538, 0.69, 0.69, 0.69])
    expected = np.polyfit(s, v, 1)[0] * 240
    assert tail_rise(late, np.array([0.1, 0.50, 0.69, 0.69, 0.69])) == pytest.approx(expected)
    assert tail_rise(np.array([5]), np.array([0.3])) is None
