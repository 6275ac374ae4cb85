"""Inputs as users bring them (weights files, models, dataset files): each bad one is a one-line
actionable error, each good one is read as documented."""

import pytest
import torch

from fragscan.base.errors import ConfigError, InputError
from fragscan.models import create_model
from fragscan.models.weights import load_state_dict

SHAPE = dict(num_classes=4, input_size=(1, 12, 12))


def _state(name="small-cnn"):
    return {k: v.contiguous() for k, v in create_model(name, **SHAPE).net.state_dict().items()}


def test_a_pickled_module_is_refused_with_how_to_resave_it(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(create_model("small-cnn", **SHAPE).net, path)
    with pytest.raises(InputError) as caught:
        load_state_dict(path)
    message = str(caught.value)
    assert "pickled object (fragscan.models.paper.SmallCNN)" in message and "state_dict()" in message
    assert "\n" not in message and "\x1b" not in message  # torch's own text is several lines with terminal codes
    assert "weights_only" not in message  # torch suggests weights_only=False: fragscan never does that


def test_bytes_that_are_no_torch_file_say_so(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(InputError, match=r"are neither a safetensors file nor a torch state dict"):
        load_state_dict(path)


@pytest.mark.parametrize("key", ["state_dict_ema", "model_ema"])
def test_a_timm_ema_only_checkpoint_loads(tmp_path, key):
    state = _state()
    path = tmp_path / "ema.pth"
    torch.save({key: state, "epoch": 3, "arch": "small-cnn"}, path)
    loaded = load_state_dict(path)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())


def test_a_checkpoint_without_tensors_names_what_it_holds(tmp_path):
    path = tmp_path / "meta.pt"
    torch.save({"epoch": 3, "accuracy": 0.9}, path)
    with pytest.raises(InputError, match=r"found keys 'epoch', 'accuracy'.*under one of 'state_dict'"):
        load_state_dict(path)


def test_a_timm_vit_is_built_for_the_datas_image_size():
    model = create_model("vit_tiny_patch16_224", num_classes=10, input_size=(1, 32, 32))
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(
    "name, size",
    [("vit_tiny_patch16_224", (1, 8, 8)), ("convnext_atto", (1, 8, 8)), ("tv:vit_b_16", (1, 28, 28))],
)
def test_a_model_that_cannot_take_the_image_size_says_so_at_build(name, size):
    with pytest.raises(ConfigError) as caught:
        create_model(name, num_classes=10, input_size=size)
    message = str(caught.value)
    assert f"model {name!r} cannot take {'x'.join(map(str, size))} images" in message and "resize" in message
    assert "\n" not in message


def test_a_pretrained_weights_file_timm_cannot_read_is_not_blamed_on_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = tmp_path / "w.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(InputError) as caught:
        create_model("timm:resnet18", num_classes=10, input_size=(1, 16, 16), pretrained=True, weights=path)
    assert "not cached" not in str(caught.value) and "cannot load weights" in str(caught.value)


def _npz(tmp_path, name="d.npz", **arrays):
    import numpy as np

    path = tmp_path / name
    np.savez(path, **arrays) if name.endswith(".npz") else np.save(path, arrays["x"])
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("uint16 pixels", r"integer x must be pixels 0-255, found \[0, 32512\]"),
        ("signed pixels", r"integer x must be pixels 0-255, found \[-128"),
        ("bool pixels", r"x is bool; give integer pixels 0-255 or floats in \[0, 1\]"),
        ("NaN pixels", r"x holds NaN or infinite values"),
        ("scalar y", r"y must be N integer labels for the N=8 images, got int64 \(\)"),
        ("not a zip", r"cannot read .*: File is not a zip file"),
        ("a .npy", r"is one \.npy array, not a \.npz archive; save it with np\.savez"),
    ],
)
def test_npz_files_that_do_not_hold_images_and_labels_are_one_line(tmp_path, case, expected):
    import numpy as np

    from fragscan.data import create_dataset

    x = np.arange(8 * 4 * 4, dtype=np.uint8).reshape(8, 4, 4)
    y = np.arange(8) % 3
    path = {
        "uint16 pixels": lambda: _npz(tmp_path, x=x.astype(np.uint16) * 256, y=y),
        "signed pixels": lambda: _npz(tmp_path, x=x.astype(np.int16) - 128, y=y),
        "bool pixels": lambda: _npz(tmp_path, x=x > 50, y=y),
        "NaN pixels": lambda: _npz(tmp_path, x=np.full((8, 4, 4), np.nan, np.float32), y=y),
        "scalar y": lambda: _npz(tmp_path, x=x, y=np.int64(3)),
        "not a zip": lambda: (tmp_path / "d.npz").write_bytes(b"PK\x03\x04junk") and tmp_path / "d.npz",
        "a .npy": lambda: _npz(tmp_path, "d.npy", x=x),
    }[case]()
    with pytest.raises(InputError, match=expected):
        create_dataset("npz", root=path)


def test_npz_integer_pixels_of_any_dtype_within_0_255_are_scaled(tmp_path):
    import numpy as np

    from fragscan.data import create_dataset

    x = np.array([[[0, 255], [51, 102]]] * 2, dtype=np.int64)
    dataset = create_dataset("npz", root=_npz(tmp_path, x=x, y=np.array([0, 1])))
    assert torch.allclose(dataset[0][0], torch.tensor([[[0.0, 1.0], [0.2, 0.4]]]))


def _image_folder(root, sizes, extra=None):
    import numpy as np
    from PIL import Image

    for name, (height, width) in sizes.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((height, width, 3), 100, np.uint8)).save(root / name)
    for name, content in (extra or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def test_an_imagefolder_file_that_is_no_image_is_named(tmp_path):
    from fragscan.data import create_dataset, evaluation_tensors

    root = _image_folder(tmp_path, {"a/0.png": (8, 8), "b/0.png": (8, 8)}, {"b/1.png": b"\x89PNG not really"})
    with pytest.raises(InputError, match=r"cannot read image '.*b/1\.png': .*remove or replace the file"):
        evaluation_tensors(create_dataset("imagefolder", root=root), None, 0)


def test_imagefolder_images_of_different_sizes_are_named(tmp_path):
    from fragscan.data import create_dataset, evaluation_tensors

    root = _image_folder(tmp_path, {"a/0.png": (8, 8), "b/0.png": (8, 6)})
    with pytest.raises(
        InputError, match=r"images differ in size: '.*a/0\.png' is \(3, 8, 8\), '.*b/0\.png' \(3, 8, 6\)"
    ):
        evaluation_tensors(create_dataset("imagefolder", root=root), None, 0)


def test_an_empty_imagefolder_class_is_not_reported_as_no_images_at_all(tmp_path):
    from fragscan.data import create_dataset

    root = _image_folder(tmp_path, {"a/0.png": (8, 8)})
    (root / "b").mkdir()
    with pytest.raises(InputError, match=r"no valid file for the classes b.*an image in every CLASS folder") as caught:
        create_dataset("imagefolder", root=root)
    assert "holds no" not in str(caught.value)


@pytest.mark.parametrize("source", ["tensors", "npz"])
def test_negative_labels_from_any_dataset_are_an_input_error(tmp_path, source):
    import numpy as np
    from torch.utils.data import TensorDataset

    from fragscan.data import create_dataset, evaluation_tensors

    labels = [0, 1, -1, 2]
    with pytest.raises(InputError, match=r"labels must be 0, 1, \.\.\., K-1; found -1"):  # npz: as it is read
        if source == "tensors":
            dataset = TensorDataset(torch.rand(4, 1, 4, 4), torch.tensor(labels))
        else:
            dataset = create_dataset("npz", root=_npz(tmp_path, x=np.zeros((4, 4, 4), np.uint8), y=np.array(labels)))
        evaluation_tensors(dataset, None, 0)


def test_an_svhn_file_that_is_no_mat_file_is_one_line(tmp_path):
    from fragscan.data import create_dataset

    (tmp_path / "test_32x32.mat").write_bytes(b"junk\n")
    with pytest.raises(InputError, match=r"cannot read SVHN file '.*test_32x32\.mat' \(expected arrays X"):
        create_dataset("svhn", root=tmp_path)


def test_a_cifar_batch_whose_data_is_not_32x32x3_rows_is_one_line(tmp_path):
    import pickle

    import numpy as np

    from fragscan.data import create_dataset

    (tmp_path / "cifar-10-batches-py").mkdir()
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((10, 100), np.uint8), b"labels": [0] * 10}, handle)
    with pytest.raises(InputError, match=r"'data' holds 1000 bytes, not rows of 3x32x32 pixels"):
        create_dataset("cifar10", root=tmp_path)


def test_an_unknown_name_lists_registered_models_first_and_any_plugin_that_failed(tmp_path, monkeypatch):
    from fragscan.base import plugins
    from fragscan.base.errors import UnknownNameError
    from fragscan.base.plugins import load_plugins
    from fragscan.models import model_spec

    monkeypatch.setattr(plugins, "_LOADED", dict(plugins._LOADED))  # the broken plugin stays in this test

    with pytest.raises(UnknownNameError) as caught:
        model_spec("zzzq-net")
    assert "known: digits-cnn, " in str(caught.value)  # not timm's alphabetical first (aimv2_...)
    broken = tmp_path / "broken_nets.py"
    broken.write_text("import a_module_that_is_not_installed\n")
    load_plugins([broken], project_dir=tmp_path / "none")
    with pytest.raises(UnknownNameError) as caught:
        model_spec("zzzq-net")
    assert str(caught.value).endswith(
        f"; plugin broken_nets (file: {broken.resolve()}) failed: "
        "ModuleNotFoundError: No module named 'a_module_that_is_not_installed'"
    )


def test_a_selected_tensor_that_cannot_be_swept_is_named_with_why():
    import fragscan

    model = create_model("digits-cnn")
    with torch.no_grad():
        model.net.classifier[3].weight.zero_()  # torchvision's ViT heads start at zero like this
    config = fragscan.ScanConfig(select=["classifier.3.*"], max_samples=20, thresholds=3, eps=0.1)
    with pytest.raises(ConfigError) as caught:
        fragscan.scan(config, model=model)
    assert "'classifier.3.weight' all entries are equal: no value band to sweep" in str(caught.value)
    assert "matches no analysable tensor" not in str(caught.value)


def test_a_corrupt_gzipped_idx_file_is_one_line(tmp_path):
    import gzip

    from fragscan.data.idx import read_idx

    data = bytearray(gzip.compress(bytes(range(256)) * 64, mtime=0))
    data[40:60] = b"\xff" * 20  # damage the deflate stream, not its end
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"cannot read IDX file '.*t10k-images-idx3-ubyte\.gz': Error -3"):
        read_idx(path)


@pytest.mark.parametrize("pretrained", [False, True])
def test_weights_without_batchnorm_step_counters_load_as_torch_loads_them(tmp_path, pretrained):
    from safetensors.torch import save_file

    name = "tv:resnet18" if pretrained else "small-cnn"
    source = create_model(name, num_classes=4, input_size=(3, 16, 16))
    state = {k: v.contiguous() for k, v in source.net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.safetensors"
    save_file(state, str(path))
    loaded = create_model(name, num_classes=4, input_size=(3, 16, 16), weights=path, pretrained=pretrained)
    assert all(torch.equal(loaded.net.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("scale, found", [(255.0, r"\[0, 255\]"), (float("nan"), r"\[nan, nan\] with NaN or inf")])
def test_a_dataset_giving_pixels_outside_0_1_is_refused_not_scored(scale, found):
    from torch.utils.data import TensorDataset

    from fragscan.data import evaluation_tensors

    pixels = torch.linspace(0, 1, 4 * 16).view(4, 1, 4, 4) * scale  # a plugin that forgot to divide by 255
    with pytest.raises(InputError, match=rf"dataset gives pixels in {found}.*floats in \[0, 1\]"):
        evaluation_tensors(TensorDataset(pixels, torch.tensor([0, 1, 0, 1])), None, 0)


class _TupleOut(torch.nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.linear = torch.nn.Linear(64, num_classes)

    def forward(self, x):
        return self.linear(x.flatten(1)), x.mean()  # logits and a feature, as some research code returns


def _broken_factory(num_classes=10):
    raise RuntimeError("cannot build: missing config file net.yaml")


@pytest.mark.parametrize(
    "factory, expected",
    [
        (
            lambda num_classes=10: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1000)),
            r"must return one tensor of logits, N x 10 for 10 classes; it returned shape \(2, 1000\)",
        ),
        (_TupleOut, r"must return one tensor of logits, N x 10 for 10 classes; it returned a tuple"),
        (
            _broken_factory,
            r"model 'odd-net' \(test\) failed to build: RuntimeError: cannot build: missing config file net.yaml",
        ),
    ],
)
def test_a_registered_model_that_cannot_serve_as_a_classifier_is_one_line(factory, expected):
    from fragscan.models import MODELS, register_model

    register_model("odd-net", input_size=(1, 8, 8), num_classes=10, source="test")(factory)
    try:
        with pytest.raises(ConfigError, match=expected):
            create_model("odd-net")
    finally:
        MODELS.unregister("odd-net")


@pytest.mark.parametrize(
    "sample, expected",
    [
        (lambda: (__import__("PIL.Image").Image.new("L", (4, 4)), 1), r"sample 0 is \(Image, int\)"),
        (lambda: (torch.rand(4, 4), 1), r"image of shape \(4, 4\)"),
        (lambda: (torch.rand(1, 4, 4), 1.0), r"torch.float32 label"),
        (lambda: (torch.rand(1, 4, 4), __import__("numpy").array([0, 1])), r"int64 label of shape \(2,\)"),  # one-hot
    ],
)
@pytest.mark.filterwarnings("ignore:Creating a tensor from a list of numpy.ndarrays")  # the one-hot case
def test_dataset_samples_outside_the_adapter_contract_are_one_line(sample, expected):
    from fragscan.data import evaluation_tensors

    class Samples(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return sample()

    with pytest.raises(
        InputError, match=r"samples must be \(float tensor C x H x W in \[0, 1\], int label\).*" + expected
    ):
        evaluation_tensors(Samples(), None, 0)


def test_imagefolder_does_not_read_split_folders_as_classes(tmp_path):
    from fragscan.data import create_dataset

    root = _image_folder(tmp_path, {f"{split}/{label}/0.png": (8, 8) for split in ("train", "test") for label in "ab"})
    assert create_dataset("imagefolder", root=root, split="test").classes == ["a", "b"]
    with pytest.raises(ConfigError, match=r"no 'extra' folder but has split folders test, train; pass --split"):
        create_dataset("imagefolder", root=root, split="extra")
    assert create_dataset("imagefolder", root=root / "train", split="test").classes == ["a", "b"]  # ROOT/CLASS
    with pytest.raises(ConfigError, match=r"holds CLASS folders, no train/ to hold a 'val' split out of"):
        create_dataset("imagefolder", root=root / "train", split="val")  # a flat folder may be the very test data


def test_weights_holding_nan_are_refused_naming_the_tensor(tmp_path):
    from safetensors.torch import save_file

    state = _state()
    state["features.0.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "diverged.safetensors"
    save_file(state, str(path))
    with pytest.raises(InputError, match=r"hold NaN or infinite values in 'features.0.weight'.*earlier checkpoint"):
        create_model("small-cnn", weights=path, **SHAPE)


@pytest.mark.parametrize("pretrained", [False, True])
def test_a_directory_as_weights_is_named_as_one(tmp_path, pretrained):
    folder = tmp_path / "run.safetensors"
    folder.mkdir()
    with pytest.raises(
        InputError, match=r"is a directory; pass the .safetensors or .pt/.pth file in it.*--checkpoints DIR"
    ):
        create_model("timm:resnet18", weights=folder, pretrained=pretrained, **SHAPE)


@pytest.mark.parametrize("dataset, torchvision_class", [("kmnist", "KMNIST"), ("cifar10", "CIFAR10"), ("svhn", "SVHN")])
def test_a_failed_download_is_one_line(tmp_path, monkeypatch, dataset, torchvision_class):
    import torchvision.datasets

    from fragscan.data import create_dataset

    def offline(*args, **kwargs):  # torchvision's own text when there is no network
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\nTried http://mirror/, got:\n"
            "<urlopen error [Errno -2] Name or service not known>\n"
        )

    monkeypatch.setattr(torchvision.datasets, torchvision_class, offline)
    with pytest.raises(InputError) as caught:
        create_dataset(dataset, root=tmp_path, download=True)
    assert str(caught.value).endswith(
        "failed: Error downloading train-images-idx3-ubyte.gz: Tried http://mirror/, got: "
        "<urlopen error [Errno -2] Name or service not known>"
    )


def test_the_mask_command_rebuilds_a_model_fitted_to_the_scans_data(tmp_path):
    import numpy as np
    from safetensors.torch import save_file
    from typer.testing import CliRunner

    import fragscan
    from fragscan.cli import app

    weights = tmp_path / "small.safetensors"
    save_file(_state(), str(weights))  # small-cnn has no fixed size or classes: the scan fits it to 12x12 npz data
    data = tmp_path / "test.npz"
    np.savez(data, x=np.random.default_rng(0).random((20, 12, 12)), y=np.arange(20) % 4)
    config = fragscan.ScanConfig(
        model="small-cnn",
        dataset="npz",
        data_root=data,
        weights=weights,
        max_samples=20,
        thresholds=3,
        eps=0.1,
        filters="pulse",
    )
    fragscan.scan_to(config, tmp_path / "out")
    result = CliRunner().invoke(
        app, ["mask", str(tmp_path / "out" / "report.json"), "--out", str(tmp_path / "m.safetensors"), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.safetensors").is_file()


@pytest.mark.parametrize("name", ["timm:resnet18", "small-cnn"])
def test_stem_cifar_on_a_model_without_stems_is_refused_not_recorded(name):
    with pytest.raises(ConfigError, match=rf"--stem cifar is for resnet18, .*; {name!r} keeps its own first layers"):
        create_model(name, stem="cifar", **SHAPE)
    assert create_model("resnet18", stem="cifar", **SHAPE).net.conv1.stride == (1, 1)


def test_train_and_retrain_fit_an_open_model_to_the_data(tmp_path):
    """small-cnn leaves classes and size to the data, as every timm/tv model does: train and retrain
    must fit it as scan does (train was an internal error, retrain 'input_size is open')."""
    from safetensors.torch import load_file, save_file
    from typer.testing import CliRunner

    from fragscan.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app,
        ["train", "small-cnn", "digits", "--split", "val", "--epochs", "1", "--quiet", "--out", str(tmp_path / "t")],
    )
    assert result.exit_code == 0, result.output
    weights = tmp_path / "t" / "epoch_001.safetensors"
    assert load_file(str(weights))["classifier.3.weight"].shape == (10, 64)
    save_file(
        {
            k: torch.ones_like(v, dtype=torch.uint8)
            for k, v in load_file(str(weights)).items()
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        },
        str(tmp_path / "mask.safetensors"),
    )
    result = runner.invoke(
        app,
        [
            "retrain",
            "small-cnn",
            "digits",
            "--weights",
            str(weights),
            "--mask",
            str(tmp_path / "mask.safetensors"),
            "--epochs",
            "1",
            "--max-samples",
            "20",
            "--eps",
            "0.1",
            "--controls",
            "none",
            "--repeats",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "weights.safetensors").is_file()


def test_a_model_that_squeezes_the_batch_axis_is_not_refused_for_it():
    from fragscan.models import MODELS, register_model

    class Squeezing(torch.nn.Module):  # common in research code: pool, then squeeze() the 1x1 map
        def __init__(self, num_classes=10):
            super().__init__()
            self.conv, self.linear = torch.nn.Conv2d(1, 4, 3), torch.nn.Linear(4, num_classes)

        def forward(self, x):
            return self.linear(torch.nn.functional.adaptive_avg_pool2d(self.conv(x), 1).squeeze())

    register_model("squeezing-net", input_size=(1, 8, 8), num_classes=10, source="test")(Squeezing)
    try:
        assert create_model("squeezing-net")(torch.rand(5, 1, 8, 8)).shape == (5, 10)
    finally:
        MODELS.unregister("squeezing-net")


@pytest.mark.parametrize("command", ["train", "scan"])
def test_an_npz_label_of_minus_one_is_refused_over_the_whole_file_not_the_drawn_samples(tmp_path, command):
    """issue 23.8: `train` died with IndexError; `scan --max-samples 3` exited 0 when it drew around the -1."""
    import numpy as np
    from typer.testing import CliRunner

    from fragscan.cli import app

    labels = np.array([0, 1, 2] * 13 + [-1])
    data = _npz(tmp_path, x=np.zeros((len(labels), 8, 8), np.uint8), y=labels)
    out = tmp_path / "out"
    arguments = [command, "digits-cnn", "npz", "--data-root", str(data), "--out", str(out), "-q"]
    arguments += ["--epochs", "1"] if command == "train" else ["--max-samples", "3", "--eps", "0.1"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "labels must be 0, 1, ..., K-1; found -1" in lines[0] and not out.exists()


@pytest.mark.parametrize("command", ["scan", "train"])
@pytest.mark.parametrize("device", ["mps", "cuda:99", "xpu:0", "meta", "cpu:1"])
def test_a_device_this_machine_lacks_is_one_line_naming_those_it_has(tmp_path, command, device):
    """issue 23.9: --device mps (or a CUDA index past the last) was a RuntimeError deep inside torch."""
    from typer.testing import CliRunner

    from fragscan.base.runtime import available_devices
    from fragscan.cli import app

    if device in available_devices():
        pytest.skip(f"this machine has {device}")
    out = tmp_path / "out"
    arguments = [command, "digits-cnn", "digits", "--device", device, "--out", str(out), "-q"]
    arguments += ["--epochs", "1"] if command == "train" else ["--max-samples", "5", "--eps", "0.1"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"--device {device!r}" in lines[0] and "which has cpu" in lines[0]
    assert not out.exists()


def test_train_refuses_to_record_accuracy_on_the_split_it_trains_on(tmp_path):
    """issue 23.17: `train --split test` recorded a "test accuracy" on its own training samples, as retrain refuses."""
    from typer.testing import CliRunner

    from fragscan.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["train", "digits-cnn", "digits", "--split", "test", "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--split and --eval-split are both 'test'" in lines[0] and not out.exists()


def test_train_on_a_single_npz_warns_that_its_accuracy_is_on_trained_samples(tmp_path):
    import json

    import numpy as np
    from typer.testing import CliRunner

    from fragscan.cli import app

    data = _npz(tmp_path, x=np.random.default_rng(0).integers(0, 255, (40, 8, 8), np.uint8), y=np.arange(40) % 4)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["train", "digits-cnn", "npz", "--data-root", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning: the 'test' split holds the very samples of the 'train' split" in " ".join(result.output.split())
    assert "very samples" in json.loads((out / "training.json").read_text())["warnings"][0]


@pytest.mark.parametrize("classes", [["only"], None])
def test_one_class_is_refused_not_scored_one_point_zero(tmp_path, classes):
    """issue 23.17: an npz of one class gave clean accuracy 1.000 from an untrained net, with no warning."""
    import numpy as np
    from torch.utils.data import TensorDataset

    from fragscan.data import class_count, create_dataset

    with pytest.raises(InputError, match="one class only"):
        if classes is None:
            create_dataset("npz", root=_npz(tmp_path, x=np.zeros((6, 8, 8), np.uint8), y=np.zeros(6, np.int64)))
        else:  # a plugin dataset that names its classes
            dataset = TensorDataset(torch.rand(6, 1, 8, 8), torch.zeros(6, dtype=torch.long))
            dataset.classes = classes
            class_count(dataset, None)


def test_a_model_whose_outputs_are_nan_is_refused_not_robust():
    """issue 23.17: a plugin model whose logits were NaN had every group classed robust."""
    import fragscan
    from fragscan.models import create_model

    model = create_model("digits-cnn")
    with torch.no_grad():
        model.net.classifier[3].bias.fill_(float("nan"))
    with pytest.raises(ConfigError, match="outputs hold NaN or infinite values on 20 of the first 20 samples"):
        fragscan.scan(fragscan.ScanConfig(max_samples=20, thresholds=3, eps=0.1), model=model)
@pytest.mark.parametrize(
    "case, expected",
    [
        ("flat x", r"^npz: x has shape \(235200,\); expected N x H x W, N x H x W x C or N x C x H x W$"),
        ("object x", r"holds Python objects, which fragscan never unpickles; save numbers"),
    ],
)
def test_npz_messages_name_the_real_problem(tmp_path, case, expected):
    """Issue 23.23: a flat x was reported as "N=235200 images"; numpy's allow_pickle hint reached the user."""
    import numpy as np

    from fragscan.data import create_dataset

    x = {"flat x": np.zeros(235200, np.uint8), "object x": np.array([object()] * 3)}[case]
    path = _npz(tmp_path, x=x, y=np.zeros(300 if case == "flat x" else 3, np.int64))
    with pytest.raises(InputError, match=expected) as caught:
        create_dataset("npz", root=path)
    assert "allow_pickle" not in str(caught.value) and "N=" not in str(caught.value)
