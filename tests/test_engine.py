"""The fast engine against the obvious loop: identical per-sample curves, bit for bit."""

import pytest
import torch
from torch import nn

from fragscan.data import create_dataset, evaluation_tensors
from fragscan.models import ModelSpec, Normalized, create_model
from fragscan.models.train import TrainSettings, train
from fragscan.sweep.attacks import ADVERSARIES, build_attack
from fragscan.sweep.engine import analysis_mode, arithmetic, sweep
from fragscan.sweep.filters import create_filter
from fragscan.sweep.groups import parameter_groups
from fragscan.sweep.naive import naive_sweep

FILTERS = ("step-up", "step-down", "pulse")
THRESHOLDS = 4
BATCH = 16  # 48 samples: three batches, so per-batch attack seeds and chunking are exercised
EPS = 0.1


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class TinyResNet(nn.Module):
    """Stem, one residual block with an identity shortcut, pooled head: traceable by torch.fx."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.block = Block(8)
        self.head = nn.Linear(8 * 4 * 4, num_classes)

    def forward(self, x):
        x = nn.functional.max_pool2d(self.block(torch.relu(self.stem(x))), 2)
        return self.head(x.flatten(1))


class Untraceable(TinyResNet):
    """Branches on a tensor's value, which symbolic tracing cannot follow."""

    def forward(self, x):
        if x.sum() > 0:
            x = x * 1.0
        return super().forward(x)


class InPlaceShortcut(TinyResNet):
    """Adds the block's output into the stem's activation in place: the stem's activation is what
    the block's groups would reuse, so a split there would see it already changed from the second
    variant on (the first, which the engine's check runs, is still right)."""

    def forward(self, x):
        x = self.stem(x)
        x = x.add_(self.block.bn2(self.block.conv2(torch.relu(self.block.bn1(self.block.conv1(torch.relu(x)))))))
        return self.head(nn.functional.max_pool2d(torch.relu(x), 2).flatten(1))


def _digits_spec():
    return ModelSpec((1, 8, 8), (0.3056,), (0.3761,), 10)


def _trained(net_type):
    torch.manual_seed(0)
    model = Normalized(net_type(), _digits_spec())
    return train(model, create_dataset("digits", split="train"), TrainSettings(epochs=2))


@pytest.fixture(scope="module")
def data():
    images, labels, _ = evaluation_tensors(create_dataset("digits"), 48, 0)
    return images, labels


def _engine_and_reference(model, images, labels, mode, attack="FGSM", **engine_options):
    groups, _ = parameter_groups(model.net)
    with analysis_mode(model):
        adversary = ADVERSARIES[mode](build_attack(attack, model, EPS, 10), images, labels, BATCH, 0)
        result = sweep(
            model, groups, FILTERS, THRESHOLDS, images, labels, adversary, batch_size=BATCH, **engine_options
        )
        expected = naive_sweep(
            model,
            groups,
            FILTERS,
            THRESHOLDS,
            images,
            labels,
            lambda m: build_attack(attack, m, EPS, 10),
            mode,
            BATCH,
            0,
        )
    return result, expected


def _assert_identical(result, expected):
    varied = False
    for group, per_filter in expected.items():
        for filter_id, (clean, adversarial) in per_filter.items():
            curve = result.curves[group][filter_id]
            assert torch.equal(curve.clean, clean), (group, filter_id, "clean")
            assert torch.equal(curve.adversarial, adversarial), (group, filter_id, "adversarial")
            varied |= bool((clean != clean[0]).any() or (adversarial != adversarial[0]).any())
    assert varied, "the curves never change: the comparison would prove nothing"


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
def test_digits_cnn_curves_equal_the_obvious_loop(data, mode):
    result, expected = _engine_and_reference(create_model("digits-cnn"), *data, mode)
    _assert_identical(result, expected)
    assert result.info.prefix_reuse and result.info.fallback is None
    assert result.info.fused_attack == (mode == "regenerate")
    assert min(result.info.suffix_share.values()) < 0.1  # the last layer's suffix is tiny


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
def test_residual_net_curves_equal_the_obvious_loop_with_one_batch_per_chunk(data, mode):
    result, expected = _engine_and_reference(_trained(TinyResNet), *data, mode, memory_budget=1)
    _assert_identical(result, expected)
    assert result.info.prefix_reuse
    assert list(result.info.full_forward_targets) == ["stem.weight"]  # its suffix is the whole model
    assert "block.conv1.weight" in result.info.suffix_share  # split across the shortcut
    assert 0 < result.info.suffix_share["block.conv2.weight"] < result.info.suffix_share["block.conv1.weight"] < 1


def test_a_random_start_attack_regenerates_with_per_batch_seeds(data):
    result, expected = _engine_and_reference(create_model("digits-cnn"), *data, "regenerate", attack="PGD")
    _assert_identical(result, expected)
    assert not result.info.fused_attack and "PGD" in result.info.fused_attack_note


def test_an_untraceable_model_falls_back_to_full_forwards_and_says_so(data):
    result, expected = _engine_and_reference(_trained(Untraceable), *data, "regenerate")
    _assert_identical(result, expected)
    assert not result.info.prefix_reuse
    assert "torch.fx cannot trace" in result.info.fallback


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
def test_an_in_place_write_to_a_reused_activation_is_not_split_there(data, mode):
    result, expected = _engine_and_reference(_trained(InPlaceShortcut), *data, mode)
    _assert_identical(result, expected)
    for name in ("block.conv1.weight", "block.conv2.weight"):
        assert "in place" in result.info.full_forward_targets[name]
    assert "head.weight" in result.info.suffix_share  # reads after the write: still reusable


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
def test_in_bf16_the_engine_still_equals_the_obvious_loop_in_bf16(data, mode):
    """Reduced precision changes the arithmetic, not the engine's exactness: its shortcuts are
    checked against, and equal, the definition computed in the same arithmetic."""
    model = _trained(TinyResNet)
    with arithmetic(model, "bf16"):
        assert model(data[0][:2]).dtype == torch.bfloat16  # the autocast really applies
        assert model.net.stem.weight.is_contiguous(memory_format=torch.channels_last)
        result, expected = _engine_and_reference(model, *data, mode)
    assert all(p.is_contiguous() for p in model.parameters())  # the user's layout is back
    _assert_identical(result, expected)
    assert result.info.prefix_reuse and result.info.fused_attack == (mode == "regenerate")


def test_masks_that_differ_only_on_zero_entries_are_one_network(data):
    """A pruned layer: thresholds whose bands add only entries that are already zero give the same
    filtered network, evaluated once; the curves still equal the obvious loop's."""
    torch.manual_seed(0)
    model = Normalized(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), _digits_spec())
    with torch.no_grad():
        weight = model.net[1].weight.detach()
        weight.uniform_(0.5, 1.0)
        weight[:, ::2] = 0.0  # half the entries pruned
        weight[0, 1] = -1.0  # the range is about [-1, 1]: thresholds -1, -1/3, 1/3, 1
    result, expected = _engine_and_reference(model, *data, "fixed")
    _assert_identical(result, expected)
    # step-down at 1/3 removes every positive entry; at -1/3 the zeros too: one network.
    altered = set()
    for filter_id in FILTERS:
        curve = result.curves["1.weight"][filter_id]
        for alpha in curve.thresholds:
            synaptic_filter = create_filter(filter_id, float(weight.min()), float(weight.max()), THRESHOLDS)
            mask = synaptic_filter.removed(weight, alpha) & (weight != 0)
            if mask.any():
                altered.add(mask.numpy().tobytes())
    assert result.info.variants == len(altered)


def test_weights_are_restored_when_the_sweep_is_interrupted(data):
    model = create_model("digits-cnn")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups, _ = parameter_groups(model.net)

    def stop(event):
        if event.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), analysis_mode(model):
        adversary = ADVERSARIES["fixed"](build_attack("FGSM", model, EPS, 10), *data, BATCH, 0)
        sweep(model, groups, FILTERS, THRESHOLDS, *data, adversary, batch_size=BATCH, progress=stop)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_the_report_says_how_the_sweep_was_computed(small_config):
    import fragscan

    engine = fragscan.scan(small_config(attack_mode="regenerate")).engine
    assert engine.prefix_reuse and engine.fused_attack and engine.fallback is None
    assert engine.cells == 5 * 3 * 5 and 0 < engine.variants <= engine.cells
    assert set(engine.suffix_share) <= {
        "features.2.weight",
        "features.6.weight",
        "classifier.1.weight",
        "classifier.3.weight",
    }


def test_out_of_memory_backs_off_to_fewer_batches_and_loses_nothing(data, monkeypatch):
    from fragscan.sweep import engine

    original = engine._Measurer.measure
    failures = []

    def measure_once_out_of_memory(self, split, k, frontier):
        if not failures:
            failures.append(k)
            raise torch.OutOfMemoryError("simulated")
        return original(self, split, k, frontier)

    monkeypatch.setattr(engine._Measurer, "measure", measure_once_out_of_memory)
    events = []
    model = create_model("digits-cnn")
    groups, _ = parameter_groups(model.net)
    with analysis_mode(model):
        adversary = ADVERSARIES["fixed"](build_attack("FGSM", model, EPS, 10), *data, BATCH, 0)
        result = sweep(model, groups, FILTERS, THRESHOLDS, *data, adversary, batch_size=BATCH, progress=events.append)
        expected = naive_sweep(
            model, groups, FILTERS, THRESHOLDS, *data, lambda m: build_attack("FGSM", m, EPS, 10), "fixed", BATCH, 0
        )
    assert failures
    _assert_identical(result, expected)
    assert [e.done for e in events] == list(range(1, len(groups) * len(FILTERS) * THRESHOLDS + 1))


def test_batch_size_auto_is_resolved_once_and_recorded(small_config):
    import fragscan

    report = fragscan.scan(small_config(batch_size="auto", attack_mode="fixed"))
    assert report.settings.batch_size == "auto"
    assert report.settings.batch_size_used == 32  # on CPU: the largest power of two <= 60 samples, at most 256


def test_batch_size_must_be_a_number_or_auto():
    from typer.testing import CliRunner

    from fragscan.cli import app

    result = CliRunner().invoke(app, ["scan", "--batch-size", "many", "--quiet"])
    assert result.exit_code == 2
    assert "--batch-size must be a whole number or 'auto'" in result.output


def test_reduced_precision_leaves_5d_weights_in_their_layout():
    model = nn.Sequential(nn.Conv3d(1, 2, 3), nn.Flatten())
    with arithmetic(model, "bf16"):
        assert model(torch.rand(1, 1, 4, 4, 4)).dtype == torch.bfloat16
    assert model[0].weight.is_contiguous()


# -- variant batching (issue 19): K filtered variants of a group in one pass ----------------------


class Linear(nn.Module):
    """Linear layers only: the filtered layer is a matrix product over K weight copies."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x.flatten(1))))


BATCHED_MODELS = {
    "conv": lambda: create_model("digits-cnn"),
    "linear": lambda: _trained(Linear),
    "residual": lambda: _trained(TinyResNet),
}


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
@pytest.mark.parametrize("net", sorted(BATCHED_MODELS))
def test_batched_variants_equal_the_obvious_loop(data, net, mode):
    """3 variants at once (12 cells a filter's sweep, so blocks of 3 and a last, shorter one): the
    curves are still the definition's, bit for bit, and every group really ran batched."""
    result, expected = _engine_and_reference(BATCHED_MODELS[net](), *data, mode, variant_batch=3)
    _assert_identical(result, expected)
    assert result.info.variant_batch == 3 and result.info.variant_batch_note is None
    assert result.info.variant_batch_difference == 0.0
    assert result.info.fused_attack == (mode == "regenerate")


def _global(model, images, labels, mode, variant_batch):
    groups, _ = parameter_groups(model.net)
    with analysis_mode(model):
        adversary = ADVERSARIES[mode](build_attack("FGSM", model, EPS, 10), images, labels, BATCH, 0)
        return sweep(
            model, groups, FILTERS, THRESHOLDS, images, labels, adversary, batch_size=BATCH, scope="global",
            variant_batch=variant_batch,
        )


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
def test_batched_variants_in_global_scope_equal_one_at_a_time(data, mode):
    """Every group filtered at once: each module holding a group loops over the variants."""
    model = _trained(TinyResNet)
    batched, single = _global(model, *data, mode, 4), _global(model, *data, mode, 1)
    assert batched.info.variant_batch == 4 and single.info.variant_batch == 1
    for filter_id, curve in single.curves["global"].items():
        assert torch.equal(batched.curves["global"][filter_id].clean, curve.clean), filter_id
        assert torch.equal(batched.curves["global"][filter_id].adversarial, curve.adversarial), filter_id
    assert any((c.clean != c.clean[0]).any() for c in single.curves["global"].values())


def test_an_attack_run_on_its_own_keeps_variants_one_at_a_time(data):
    model = create_model("digits-cnn")
    groups, _ = parameter_groups(model.net)
    with analysis_mode(model):
        adversary = ADVERSARIES["regenerate"](build_attack("PGD", model, EPS, 10), *data, BATCH, 0)
        result = sweep(model, groups[-1:], ("pulse",), 3, *data, adversary, batch_size=BATCH, variant_batch=4)
    assert result.info.variant_batch == 1 and "only fixed examples and FGSM" in result.info.variant_batch_note


def test_variant_batch_auto_is_one_on_a_cpu_and_says_why(data):
    result, expected = _engine_and_reference(create_model("digits-cnn"), *data, "fixed", variant_batch="auto")
    _assert_identical(result, expected)
    assert result.info.variant_batch == 1 and "auto: one at a time on a CPU" in result.info.variant_batch_note


def test_a_batched_pass_that_disagrees_on_the_first_batch_is_not_used(data, monkeypatch):
    """The check, not trust: batched logits off by a little make every group run one at a time."""
    from fragscan.sweep import engine

    original = engine._Measurer.logits_many

    def off_by_a_little(self, *args):
        return tuple(logits + 1e-4 for logits in original(self, *args))

    monkeypatch.setattr(engine._Measurer, "logits_many", off_by_a_little)
    result, expected = _engine_and_reference(create_model("digits-cnn"), *data, "fixed", variant_batch=4)
    _assert_identical(result, expected)
    assert result.info.variant_batch == 1 and "did not reproduce" in result.info.variant_batch_note
    assert result.info.variant_batch_difference == pytest.approx(1e-4, rel=0.01)


def test_out_of_memory_with_batched_variants_halves_them_and_loses_nothing(data, monkeypatch):
    from fragscan.sweep import engine

    original = engine._Measurer.measure_many
    failures = []

    def out_of_memory_at_four(self, split, k, frontier, variants):
        if variants.count == 4:
            failures.append(k)
            raise torch.OutOfMemoryError("simulated")
        return original(self, split, k, frontier, variants)

    monkeypatch.setattr(engine._Measurer, "measure_many", out_of_memory_at_four)
    result, expected = _engine_and_reference(create_model("digits-cnn"), *data, "fixed", variant_batch=4)
    assert failures
    _assert_identical(result, expected)
    assert result.info.variant_batch == 2 and "out of memory: 2 variants at once" in result.info.variant_batch_note


def test_the_report_records_the_variant_batch_used_and_a_2_1_report_still_loads(small_config, tmp_path):
    import json

    import fragscan
    from fragscan.report import load_report, write_report

    report = fragscan.scan(small_config(attack_mode="regenerate", variant_batch=4))
    engine = report.engine
    assert engine.variant_batch == 4 and engine.variant_batch_note is None and engine.variant_batch_difference == 0
    assert report.settings.variant_batch == 4
    data = json.loads(write_report(report, tmp_path / "report.json").read_text())
    data["schema_version"] = "2.1"  # as schema 2.1 wrote it: none of 2.2's fields
    del data["settings"]["variant_batch"]
    for name in ("variant_batch", "variant_batch_note", "variant_batch_difference"):
        del data["engine"][name]
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert load_report(tmp_path / "old.json").engine.variant_batch == 1  # one at a time, as 2.1's engine ran


@pytest.mark.parametrize(
    "value, message",
    [
        ("0", "--variant-batch must lie in [1, 256]"),
        ("257", "see docs/limits.md"),
        ("many", "--variant-batch must be a whole number or 'auto'"),
    ],
)
def test_variant_batch_is_a_bounded_number_or_auto(value, message):
    from typer.testing import CliRunner

    from fragscan.cli import app

    result = CliRunner().invoke(app, ["scan", "--variant-batch", value, "--quiet"])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("precision, tf32", [("fp32", False), ("tf32", True), ("bf16", False)])
def test_the_sweeps_arithmetic_sets_cudas_switches_and_restores_them(precision, tf32):
    """fp32 must not borrow TF32 convolutions (torch's default), and cuDNN runs deterministic kernels."""
    backends = torch.backends
    before = (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32, backends.cudnn.deterministic,
              backends.cudnn.benchmark)
    backends.cudnn.allow_tf32, backends.cudnn.benchmark = True, True
    try:
        with arithmetic(nn.Linear(2, 2), precision):
            assert backends.cuda.matmul.allow_tf32 is tf32 and backends.cudnn.allow_tf32 is tf32
            assert backends.cudnn.deterministic and not backends.cudnn.benchmark
        assert backends.cudnn.allow_tf32 and backends.cudnn.benchmark  # as they were
    finally:
        (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32, backends.cudnn.deterministic,
         backends.cudnn.benchmark) = before


def test_tf32_is_refused_on_a_cpu(tmp_path):
    from typer.testing import CliRunner

    from fragscan.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["scan", "--precision", "tf32", "--device", "cpu", "--out", str(out), "--quiet"])
    assert result.exit_code == 2 and "--precision tf32 is CUDA's tensor-core arithmetic" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_an_adaptive_scan_with_batched_variants_equals_one_at_a_time(small_config):
    """Adaptive looks reach the engine through the same entry point: each look batches too."""
    import fragscan

    reports = [
        fragscan.scan(small_config(attack_mode="regenerate", adaptive={"initial_samples": 30}, variant_batch=k))
        for k in (1, 4)
    ]
    assert [r.engine.variant_batch for r in reports] == [1, 4]
    one, batched = (r.model_dump(include={"groups", "baseline"}) for r in reports)
    assert one == batched


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
def test_batched_variants_of_biases_and_norm_weights_equal_one_at_a_time(data, mode):
    """``--include bias,norm``: a BatchNorm's weight or a conv's bias loops over the variants like a weight."""
    model = _trained(TinyResNet)
    everything = parameter_groups(model.net, include=("bias", "norm"))[0]
    groups = [g for g in everything if not g.name.endswith("conv1.weight")]
    assert {"block.bn1.weight", "block.bn2.bias", "stem.bias"} <= {g.name for g in groups}
    results = []
    with analysis_mode(model):
        for k in (1, 4):
            adversary = ADVERSARIES[mode](build_attack("FGSM", model, EPS, 10), *data, BATCH, 0)
            options = dict(batch_size=BATCH, variant_batch=k)
            results.append(sweep(model, groups, FILTERS, THRESHOLDS, *data, adversary, **options))
    one, batched = results
    assert batched.info.variant_batch == 4 and batched.info.variant_batch_note is None
    for group, per_filter in one.curves.items():
        for filter_id, curve in per_filter.items():
            assert torch.equal(batched.curves[group][filter_id].clean, curve.clean), (group, filter_id)
            assert torch.equal(batched.curves[group][filter_id].adversarial, curve.adversarial), (group, filter_id)
