import numpy as np
import pytest
import torch

import fragscan
from fragscan.confidence import Bootstrap, pack_bits, unpack_bits
from fragscan.scores import filtering_scores

POSITIONS = np.linspace(0, 1, 5).tolist()


def _correct(samples: int, accuracy: float, seed: int) -> torch.Tensor:
    return torch.rand(samples, generator=torch.Generator().manual_seed(seed)) < accuracy


def _falling_curve(unfiltered: torch.Tensor, seed: int) -> torch.Tensor:
    """Each threshold forgets a growing random share of the samples the unfiltered network got right."""
    generator = torch.Generator().manual_seed(seed)
    keep = [torch.rand(unfiltered.numel(), generator=generator) >= share for share in np.linspace(0, 0.4, 5)]
    return torch.stack([unfiltered & k for k in keep])


def _adversarial_width(samples: int) -> float:
    clean0, adversarial0 = _correct(samples, 0.9, 0), _correct(samples, 0.6, 1)
    bootstrap = Bootstrap(clean0, adversarial0, 400, seed=0)
    low, high = bootstrap.intervals(_falling_curve(clean0, 2), _falling_curve(adversarial0, 3), POSITIONS).adversarial
    return high - low


def test_the_interval_shrinks_as_samples_grow():
    widths = [_adversarial_width(n) for n in (100, 400, 1600)]
    assert widths[0] > widths[1] > widths[2] > 0
    # The standard error falls as 1/sqrt(n): four times the samples, about half the width.
    assert widths[0] / widths[2] == pytest.approx(4, rel=0.35)


def test_a_curve_identical_to_the_baseline_has_an_interval_around_zero():
    clean0, adversarial0 = _correct(300, 0.9, 0), _correct(300, 0.5, 1)
    bootstrap = Bootstrap(clean0, adversarial0, 500, seed=0)
    intervals = bootstrap.intervals(clean0.expand(5, -1), adversarial0.expand(5, -1), POSITIONS)
    for interval in (intervals.clean, intervals.adversarial, intervals.difference):
        low, high = interval
        assert low <= 0 <= high
        assert high - low < 1e-12  # paired: every resample moves curve and baseline together


def test_the_interval_contains_the_point_score_of_a_falling_curve():
    clean0, adversarial0 = _correct(500, 0.9, 0), _correct(500, 0.6, 1)
    clean, adversarial = _falling_curve(clean0, 2), _falling_curve(adversarial0, 3)
    low, high = Bootstrap(clean0, adversarial0, 500, seed=0).intervals(clean, adversarial, POSITIONS).adversarial
    accuracy = lambda correct: correct.double().mean(-1).numpy()  # noqa: E731
    point = filtering_scores(
        accuracy(clean), accuracy(adversarial), POSITIONS, accuracy(clean0), accuracy(adversarial0)
    ).adversarial
    assert low < point < high < 0


def test_the_bootstrap_is_deterministic_for_a_seed_and_varies_with_it():
    clean0, adversarial0 = _correct(200, 0.9, 0), _correct(200, 0.6, 1)
    curves = (_falling_curve(clean0, 2), _falling_curve(adversarial0, 3), POSITIONS)
    first = Bootstrap(clean0, adversarial0, 200, seed=7).intervals(*curves)
    assert Bootstrap(clean0, adversarial0, 200, seed=7).intervals(*curves) == first
    assert Bootstrap(clean0, adversarial0, 200, seed=8).intervals(*curves) != first


def test_packed_bits_round_trip_odd_shapes():
    correct = torch.rand(3, 13, generator=torch.Generator().manual_seed(0)) < 0.5
    assert torch.equal(unpack_bits(pack_bits(correct), (3, 13)), correct)


def test_a_scan_reports_intervals_that_bracket_its_scores_and_recompute_from_the_report(small_config):
    report = fragscan.scan(small_config(bootstrap=300))
    clean0 = unpack_bits(report.baseline.correct.clean, [report.baseline.samples])
    assert clean0.double().mean().item() == report.baseline.clean
    for group in report.groups:
        for curve in group.filters.values():
            low, high = curve.intervals.adversarial
            assert low <= curve.scores.adversarial <= high
            shape = [len(curve.thresholds), report.baseline.samples]
            assert unpack_bits(curve.correct.adversarial, shape).double().mean(1).tolist() == curve.adversarial


def test_evidence_classification_is_the_recorded_default_and_needs_intervals(small_config):
    report = fragscan.scan(small_config(bootstrap=200, thresholds=3, filters="pulse"))
    assert report.settings.classify == "evidence" and report.settings.bootstrap == 200
    with pytest.raises(ValueError, match="--classify evidence needs score intervals"):
        small_config(bootstrap=0)
    with pytest.raises(ValueError, match="--classify ci was replaced by evidence"):
        small_config(classify="ci")
