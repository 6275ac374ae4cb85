"""Repeated confidence intervals (method §5b, issue 21): Pocock's constants, and the share of wrong
classes an adaptive sweep decides when it looks often."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from fragscan import ScanConfig
from fragscan.config import Adaptive
from fragscan.report.model import DECIDED
from fragscan.scoring.adaptive import look, plan
from fragscan.scoring.assess import References, assess
from fragscan.scoring.sequential import crossing_probability, level_of, pocock_z
from fragscan.sweep.engine import Curve

# Jennison and Turnbull (2000), Table 2.1: Pocock's C_P(K, 0.05) for K equally spaced looks.
POCOCK_TABLE = {1: 1.960, 2: 2.178, 3: 2.289, 4: 2.361, 5: 2.413, 10: 2.555, 15: 2.626, 20: 2.672}


@pytest.mark.parametrize(("looks", "z"), POCOCK_TABLE.items())
def test_pocock_constants_match_the_published_table(looks, z):
    assert pocock_z([100 * (k + 1) for k in range(looks)], 0.05) == pytest.approx(z, abs=6e-4)


def test_the_crossing_probability_is_the_multivariate_normal_one_for_uneven_looks():
    looks = plan(Adaptive(initial_samples=30, look_ratio=1.5), drawn=540, groups=5).schedule
    correlation = np.sqrt(np.minimum.outer(looks, looks) / np.maximum.outer(looks, looks))
    z = pocock_z(looks, 0.01)
    inside = multivariate_normal(cov=correlation).cdf(np.full(len(looks), z), lower_limit=np.full(len(looks), -z))
    assert crossing_probability(z, looks) == pytest.approx(0.01, rel=1e-4)
    assert 1 - inside == pytest.approx(0.01, abs=2e-4)
    # far below Bonferroni over the looks, above one look's
    assert level_of(2.576) < level_of(z) < 1 - 0.01 / len(looks)


TAU = 0.05
# True scores on both sides of -tau and near it, where a wrong class is most likely.
TRUE_SCORES = (-0.15, -0.07, -0.04, 0.0)


def simulated_sweep(seed: int, drawn: int, score: float) -> tuple[References, Curve]:
    """An unfiltered network right on 60 % of samples (clean and adversarial), and a filter that
    makes it forget a share q of them at its 2nd and 3rd of 3 thresholds: by Simpson's rule
    S_clean = S_adv = -(4q + q)/6, the true ``score``."""
    generator = torch.Generator().manual_seed(seed)
    unfiltered = tuple(torch.rand(drawn, generator=generator) < 0.6 for _ in range(2))
    forget = torch.tensor([0.0, 1.0, 1.0]) * -score * 6 / 5
    curves = [reference & (torch.rand(3, drawn, generator=generator) >= forget[:, None]) for reference in unfiltered]
    curve = Curve([0.0, 0.5, 1.0], [0.0, 0.5, 1.0], [1, 1, 1], [1, 1, 1], 10, *curves)
    return References(unfiltered, torch.arange(drawn), 400, seed), curve


def truth(score: float) -> str:
    return "fragile" if score < -TAU else "antifragile" if score > TAU else "robust"


def decided_classes(references, curve, scoring, adaptive) -> list[str]:
    """The decided classes of a sweep that stops at its first settled look (clean, adversarial and
    the summary class)."""
    for samples in adaptive.schedule:
        prefix = replace(curve, clean=curve.clean[:, :samples], adversarial=curve.adversarial[:, :samples])
        seen = look(prefix, "pulse", references, scoring, adaptive)
        if seen.stop is not None:
            break
    return [c for c in (seen.classes["clean"], seen.classes["adversarial"], seen.summary[0]) if c in DECIDED]


def wrong_share(scoring, adaptive, drawn: int, runs: int) -> tuple[int, float]:
    decided, wrong = 0, 0
    for score in TRUE_SCORES:
        for seed in range(runs):
            classes = decided_classes(*simulated_sweep(seed, drawn, score), scoring, adaptive)
            decided += len(classes)
            wrong += sum(c != truth(score) for c in classes)
    return decided, wrong / max(1, decided)


def test_an_adaptive_sweep_looking_often_decides_wrong_classes_at_most_alpha_of_the_time():
    """Simulated sequential draws at the adaptive levels (15 looks from 30 to 400 samples), true
    scores on both sides of -tau: the share of decided classes that contradict the truth stays
    within alpha."""
    config = ScanConfig(tau=TAU, bootstrap=400, adaptive={"initial_samples": 30, "look_ratio": 1.2})
    drawn = 400
    adaptive = plan(config.adaptive, drawn=drawn, groups=5)
    decided, wrong = wrong_share(config.scoring_part, adaptive, drawn, runs=50)
    print(f"\n{decided} decided classes, {wrong:.3f} contradicting the truth")
    assert decided > 200 and wrong <= 0.05


def test_repeated_intervals_cover_the_truth_at_every_look_at_once():
    """What makes any stopping rule safe: over simulated draws, the share in which the interval of
    some planned look misses the true score is about alpha at Pocock's z, and well above it when
    each look is a plain 95 % interval."""
    config = ScanConfig(bootstrap=400, adaptive={"initial_samples": 30, "look_ratio": 1.2})
    drawn, score, runs = 400, -0.1, 150
    adaptive = plan(config.adaptive, drawn=drawn, groups=1)
    missed = {"pocock": 0, "plain": 0}
    for seed in range(runs):
        references, curve = simulated_sweep(seed, drawn, score)
        for name, level in (("pocock", adaptive.filter_level), ("plain", 0.95)):
            for samples in adaptive.schedule:
                prefix = replace(curve, clean=curve.clean[:, :samples], adversarial=curve.adversarial[:, :samples])
                low, high = assess(prefix, references.at(samples), config.scoring_part, level).intervals.clean
                if not low <= score <= high:
                    missed[name] += 1
                    break
    print(f"\nsome look missed the truth: {missed['pocock'] / runs:.3f} (Pocock), {missed['plain'] / runs:.3f} (plain)")
    assert missed["pocock"] / runs <= 0.08 and missed["plain"] / runs > 0.1
