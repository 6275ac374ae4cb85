import pytest
import torch

from fragscan.base.errors import ConfigError
from fragscan.base.limits import MIN_THRESHOLDS
from fragscan.config import ScanConfig
from fragscan.sweep.filters import FILTERS, Pulse, StepDown, StepUp, create_filter

W = torch.tensor([[-1.0, -0.5], [0.5, 1.0]])


def test_step_up_thresholds_rise_and_remove_low_values():
    f = StepUp.over(W, 5)
    assert f.thresholds().tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert f.removed(W, -1.0).tolist() == [[True, False], [False, False]]
    assert f.removed(W, -0.5).tolist() == [[True, True], [False, False]]
    assert f.removed(W, 0.0).tolist() == [[True, True], [False, False]]
    assert f.removed(W, 1.0).all()


def test_step_down_thresholds_fall_and_remove_high_values():
    f = StepDown.over(W, 5)
    assert f.thresholds().tolist() == [1.0, 0.5, 0.0, -0.5, -1.0]
    assert f.removed(W, 1.0).tolist() == [[False, False], [False, True]]
    assert f.removed(W, 0.5).tolist() == [[False, False], [True, True]]
    assert f.removed(W, -1.0).all()


def test_pulse_window_is_half_open_with_half_width_range_over_2n():
    f = Pulse(-1.0, 1.0, 4)  # s = 2 / 8 = 0.25
    assert f.half_width == 0.25
    values = torch.tensor([-0.25, -0.2499, 0.0, 0.2499, 0.25])
    assert f.removed(values, 0.0).tolist() == [True, True, True, True, False]
    # The first and last bands reach the range's ends.
    assert f.removed(W, -1.0).tolist() == [[True, False], [False, False]]
    assert f.removed(W, 1.0).tolist() == [[False, False], [False, True]]


@pytest.mark.parametrize("filter_id", FILTERS.list())
def test_every_filter_gives_n_thresholds_and_boolean_masks_of_the_tensor_shape(filter_id):
    weight = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    f = create_filter(filter_id, float(weight.min()), float(weight.max()), 7)
    thresholds = f.thresholds()
    assert thresholds.shape == (7,)
    assert f.positions().tolist() == pytest.approx([i / 6 for i in range(7)])
    for alpha in thresholds.tolist():
        mask = f.removed(weight, alpha)
        assert mask.dtype == torch.bool and mask.shape == weight.shape


@pytest.mark.parametrize("filter_id", ["step-up", "step-down", "magnitude", "random"])
def test_sweeping_filters_remove_more_at_each_threshold_and_everything_at_the_end(filter_id):
    weight = torch.randn(50, generator=torch.Generator().manual_seed(1))
    f = create_filter(filter_id, float(weight.min()), float(weight.max()), 9)
    masks = [f.removed(weight, a) for a in f.thresholds().tolist()]
    for before, after in zip(masks, masks[1:]):
        assert bool((before & ~after).sum() == 0), "masks must be nested"
    assert masks[-1].all()


def test_pulse_bands_cover_each_entry_about_once():
    weight = torch.randn(1000, generator=torch.Generator().manual_seed(2))
    f = Pulse.over(weight, 25)
    hits = sum(f.removed(weight, a).int() for a in f.thresholds().tolist())
    # Band width 2s equals the threshold spacing times (n-1)/n, so bands barely leave gaps.
    assert hits.max() <= 1
    assert hits.float().mean() > 0.9


def test_a_filter_needs_the_thresholds_the_config_needs():
    with pytest.raises(ConfigError):
        StepUp(0.0, 1.0, 1)
    with pytest.raises(ConfigError, match=f"pass --thresholds {MIN_THRESHOLDS} or more"):
        StepUp(0.0, 1.0, MIN_THRESHOLDS - 1)
    suggested = ScanConfig(thresholds=MIN_THRESHOLDS).thresholds  # the value the message suggests is valid
    assert StepUp(0.0, 1.0, suggested).n == suggested
