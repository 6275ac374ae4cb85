import numpy as np
import pytest

from fragscan.scoring.classify import classify
from fragscan.scoring.scores import filtering_scores, integrate

T = np.linspace(0, 1, 25)


def test_constant_curves_at_baseline_score_zero():
    s = filtering_scores([0.9] * 25, [0.4] * 25, T, 0.9, 0.4)
    assert s.clean == pytest.approx(0.0, abs=1e-12)
    assert s.adversarial == pytest.approx(0.0, abs=1e-12)
    assert s.difference == pytest.approx(0.0, abs=1e-12)


def test_linear_fall_to_zero_has_area_minus_one_half():
    clean = 0.8 * (1 - T)
    s = filtering_scores(clean, clean / 2, T, 0.8, 0.4)
    assert s.clean == pytest.approx(-0.5)
    assert s.adversarial == pytest.approx(-0.5)
    assert s.difference == pytest.approx(0.0, abs=1e-12)


def test_simpson_is_exact_on_quadratics():
    assert integrate(T**2, T) == pytest.approx(1 / 3, abs=1e-12)


def test_scores_integrate_in_sweep_order_so_a_falling_threshold_is_not_sign_flipped():
    # A step-down sweep whose accuracy drops: the score must be negative, as for step-up.
    thresholds_falling = np.linspace(1.0, -1.0, 25)
    accuracy = np.where(thresholds_falling > 0, 1.0, 0.5)
    s = filtering_scores(accuracy, accuracy, T, 1.0, 1.0)
    assert s.clean < 0
    assert s.clean == pytest.approx(integrate(accuracy - 1, T))


def test_rising_adversarial_curve_is_antifragile_and_positive_difference():
    s = filtering_scores([0.9] * 25, 0.4 * (1 + 0.5 * T), T, 0.9, 0.4)
    assert s.adversarial == pytest.approx(0.25)
    assert s.difference == pytest.approx(0.25)
    assert classify(s.adversarial, 0.01, rule="tau") == "antifragile"


def test_density_baseline_compares_with_share_present():
    present = 1 - T
    s = filtering_scores(0.8 * (1 - T), 0.4 * (1 - T), T, 0.8, 0.4, present=present)
    assert s.clean == pytest.approx(0.0, abs=1e-12)


def test_normalising_by_first_threshold_uses_the_curves_first_value():
    s = filtering_scores([0.5] * 25, [0.2] * 25, T, 1.0, 1.0, normalise_by="first")
    assert s.clean == pytest.approx(0.0, abs=1e-12)


def test_zero_reference_accuracy_makes_the_score_undefined():
    s = filtering_scores([0.5] * 25, [0.0] * 25, T, 0.5, 0.0)
    assert s.adversarial is None and s.difference is None
    assert classify(s.adversarial, 0.01, rule="tau") == "undefined"


@pytest.mark.parametrize(
    ("score", "expected"),
    [(-0.02, "fragile"), (-0.01, "robust"), (0.0, "robust"), (0.01, "robust"), (0.011, "antifragile")],
)
def test_classes_at_tau(score, expected):
    assert classify(score, 0.01, rule="tau") == expected


def test_an_unperturbed_sweep_is_never_robust():
    assert classify(0.0, 0.01, perturbed=False) == "unperturbed"
