"""Every dataset adapter on small generated fixtures written in its real on-disk layout."""

import gzip
import json
import pickle
import struct

import numpy as np
import pytest
import torch

from fragscan.base.errors import ConfigError, InputError
from fragscan.data import DATASETS, class_count, create_dataset, dataset_spec

RNG = np.random.default_rng(0)


def _idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape) + array.astype(np.uint8).tobytes()


def _write_idx(directory, images, labels, split, *, gz: bool, sep: str):
    directory.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    for kind, idx, array in (("images", "idx3", images), ("labels", "idx1", labels)):
        path = directory / f"{prefix}-{kind}{sep}{idx}-ubyte{'.gz' if gz else ''}"
        data = _idx_bytes(array)
        path.write_bytes(gzip.compress(data) if gz else data)


IDX_LAYOUTS = {
    "debian (flat, gzip, dashes)": lambda root, tv: (root, True, "-"),
    "flat, plain, dots": lambda root, tv: (root, False, "."),
    "torchvision <Name>/raw": lambda root, tv: (root / tv / "raw", False, "-"),
    "raw/ gzip": lambda root, tv: (root / "raw", True, "-"),
}


@pytest.mark.parametrize(
    ("name", "torchvision_name"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")]
)
@pytest.mark.parametrize("layout", IDX_LAYOUTS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_adapters_read_every_layout(tmp_path, name, torchvision_name, layout, split):
    images = RNG.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 1, 7], dtype=np.uint8)
    directory, gz, sep = IDX_LAYOUTS[layout](tmp_path, torchvision_name)
    _write_idx(directory, images, labels, split, gz=gz, sep=sep)
    dataset = DATASETS.get(name)(root=tmp_path, split=split)  # the adapter's own split (val not held out)
    assert len(dataset) == 6
    pixels, label = dataset[1]
    assert pixels.shape == (1, 28, 28) and pixels.dtype == torch.float32 and label == 9
    assert torch.equal(pixels[0], torch.from_numpy(images[1]).float() / 255)
    assert class_count(dataset, dataset_spec(name)) == 10


def test_idx_errors_name_the_files_and_places(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        create_dataset("mnist", root=tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"no t10k-images-idx3-ubyte.*FashionMNIST/raw.*--download"):
        create_dataset("fashion-mnist", root=tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
        b"\x00\x00\x08\x03" + struct.pack(">3I", 5, 28, 28) + b"\x00" * 10
    )
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(5)))
    with pytest.raises(InputError, match="truncated"):
        create_dataset("mnist", root=tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(InputError, match="bad magic number"):
        create_dataset("mnist", root=tmp_path)
    with pytest.raises(ConfigError, match="splits 'train', 'test'"):
        create_dataset("mnist", root=tmp_path, split="validation")


def _cifar_arrays(count, classes):
    return RNG.integers(0, 256, (count, 3 * 32 * 32), dtype=np.uint8), [int(v) for v in RNG.integers(0, classes, count)]


def _pickle(path, batch):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)


def test_cifar10_python_layout(tmp_path):
    data, labels = _cifar_arrays(4, 10)
    _pickle(
        tmp_path / "cifar-10-batches-py" / "test_batch",
        {b"batch_label": b"testing batch 1 of 1", b"data": data, b"labels": labels},
    )
    dataset = create_dataset("cifar10", root=tmp_path, split="test")
    pixels, label = dataset[2]
    assert pixels.shape == (3, 32, 32) and label == labels[2]
    assert torch.equal(pixels, torch.from_numpy(data[2].reshape(3, 32, 32)).float() / 255)


def test_cifar10_train_concatenates_five_batches_and_binary_layout_matches(tmp_path):
    batches = [_cifar_arrays(2, 10) for _ in range(5)]
    for i, (data, labels) in enumerate(batches, 1):
        _pickle(tmp_path / "py" / "cifar-10-batches-py" / f"data_batch_{i}", {"data": data, "labels": labels})
        records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], data], axis=1)
        (tmp_path / "bin" / "cifar-10-batches-bin").mkdir(parents=True, exist_ok=True)
        records.tofile(tmp_path / "bin" / "cifar-10-batches-bin" / f"data_batch_{i}.bin")
    python = DATASETS.get("cifar10")(root=tmp_path / "py", split="train")  # the adapter's own train, val not held out
    binary = DATASETS.get("cifar10")(root=tmp_path / "bin", split="train")
    assert len(python) == len(binary) == 10
    assert torch.equal(python.images, binary.images) and torch.equal(python.targets, binary.targets)
    assert python.targets.tolist() == [label for _, labels in batches for label in labels]


def test_cifar100_python_and_binary_layouts_use_fine_labels(tmp_path):
    data, fine = _cifar_arrays(3, 100)
    coarse = [f % 20 for f in fine]
    _pickle(tmp_path / "cifar-100-python" / "test", {b"data": data, b"fine_labels": fine, b"coarse_labels": coarse})
    records = np.concatenate(
        [np.array(coarse, dtype=np.uint8)[:, None], np.array(fine, dtype=np.uint8)[:, None], data], axis=1
    )
    (tmp_path / "cifar-100-binary").mkdir()
    records.tofile(tmp_path / "cifar-100-binary" / "test.bin")
    python = create_dataset("cifar100", root=tmp_path, split="test")
    assert python.targets.tolist() == fine
    (tmp_path / "cifar-100-python" / "test").unlink()
    binary = create_dataset("cifar100", root=tmp_path, split="test")
    assert binary.targets.tolist() == fine and torch.equal(binary.images, python.images)


class _Payload:
    def __reduce__(self):
        return (print, ("this must not run",))


def test_a_cifar_pickle_that_would_run_code_is_refused(tmp_path):
    _pickle(tmp_path / "cifar-10-batches-py" / "test_batch", {b"data": _Payload(), b"labels": [0]})
    with pytest.raises(InputError, match="refusing to load .*print"):
        create_dataset("cifar10", root=tmp_path)


def test_cifar_missing_files_name_both_layouts(tmp_path):
    with pytest.raises(InputError, match=r"test_batch \(python layout\) or test_batch.bin \(binary\)"):
        create_dataset("cifar10", root=tmp_path)


def test_svhn_mat_files_map_label_10_to_zero(tmp_path):
    from scipy.io import savemat

    images = RNG.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": images, "y": np.array([[10], [1], [2], [10], [9]], dtype=np.uint8)})
    dataset = create_dataset("svhn", root=tmp_path, split="test")
    assert [dataset[i][1] for i in range(5)] == [0, 1, 2, 0, 9]
    pixels, _ = dataset[3]
    assert torch.equal(pixels, torch.from_numpy(images[:, :, :, 3].transpose(2, 0, 1).copy()).float() / 255)
    with pytest.raises(InputError, match="train_32x32.mat"):
        create_dataset("svhn", root=tmp_path, split="train")


def _png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_imagefolder_reads_split_folders_or_the_root(tmp_path):
    for i, cls in enumerate(["cat", "dog", "emu"]):
        _png(tmp_path / "test" / cls / f"{i}.png", np.full((6, 6, 3), 40 * i, dtype=np.uint8))
    dataset = create_dataset("imagefolder", root=tmp_path, split="test")
    assert dataset.classes == ["cat", "dog", "emu"] and class_count(dataset, dataset_spec("imagefolder")) == 3
    pixels, label = dataset[2]
    assert label == 2 and pixels.shape == (3, 6, 6) and torch.allclose(pixels, torch.full((3, 6, 6), 80 / 255))
    flat = create_dataset("imagefolder", root=tmp_path / "test", split="anything", grayscale=True)
    assert flat[0][0].shape == (1, 6, 6)
    with pytest.raises(InputError, match="CLASS"):
        create_dataset("imagefolder", root=tmp_path / "test" / "cat")


def test_tiny_imagenet_maps_val_annotations_through_train_class_order(tmp_path):
    wnids = ["n02", "n01", "n03"]  # directory order is not class order: sorted WNIDs are
    for wnid in wnids:
        _png(tmp_path / "train" / wnid / "images" / f"{wnid}_0.JPEG", np.zeros((64, 64, 3), dtype=np.uint8))
    val = [("val_0.JPEG", "n03"), ("val_1.JPEG", "n01"), ("val_2.JPEG", "n02")]
    for i, (file, _) in enumerate(val):
        _png(tmp_path / "val" / "images" / file, np.full((64, 64, 3), 10 * i, dtype=np.uint8))
    (tmp_path / "val" / "val_annotations.txt").write_text(
        "".join(f"{file}\t{wnid}\t0\t0\t63\t63\n" for file, wnid in val)
    )
    dataset = create_dataset("tiny-imagenet", root=tmp_path, split="test")  # its labelled val/ folder
    assert [dataset[i][1] for i in range(3)] == [2, 0, 1]
    assert dataset[1][0].shape == (3, 64, 64) and torch.allclose(dataset[1][0], torch.full((3, 64, 64), 10 / 255))
    train = DATASETS.get("tiny-imagenet")(root=tmp_path, split="train")
    assert train.classes == ["n01", "n02", "n03"] and len(train) == 3
    (tmp_path / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\n")
    with pytest.raises(InputError, match="line 1"):
        create_dataset("tiny-imagenet", root=tmp_path, split="test")


@pytest.mark.parametrize("layout", ["NHWC uint8", "NCHW float", "NHW uint8"])
def test_npz_accepts_common_array_layouts(tmp_path, layout):
    base = RNG.integers(0, 256, (4, 3, 5, 5), dtype=np.uint8)
    x = {"NHWC uint8": base.transpose(0, 2, 3, 1), "NCHW float": base / 255.0, "NHW uint8": base[:, 0]}[layout]
    np.savez(tmp_path / "data.npz", x=x, y=np.array([1, 0, 4, 2]))
    dataset = create_dataset("npz", root=tmp_path / "data.npz")
    expected = torch.from_numpy(base[:, :1] if layout == "NHW uint8" else base).float() / 255
    assert torch.allclose(torch.stack([dataset[i][0] for i in range(4)]), expected)
    assert [int(dataset[i][1]) for i in range(4)] == [1, 0, 4, 2] and class_count(dataset, dataset_spec("npz")) == 5


def test_npz_errors(tmp_path):
    with pytest.raises(InputError, match="test.npz"):
        create_dataset("npz", root=tmp_path)
    np.savez(tmp_path / "test.npz", images=np.zeros((2, 4, 4)))
    with pytest.raises(InputError, match="needs arrays 'x' and 'y'"):
        create_dataset("npz", root=tmp_path)
    np.savez(tmp_path / "test.npz", x=np.full((2, 4, 4), 3.0), y=np.array([0, 1]))
    with pytest.raises(InputError, match=r"float x must lie in \[0, 1\]"):
        create_dataset("npz", root=tmp_path)


def test_val_is_held_out_of_the_training_data_stratified_stable_and_apart_from_test():
    native = DATASETS.get("digits")(split="train")  # the adapter's own training data
    train, val, test = (create_dataset("digits", split=split) for split in ("train", "val", "test"))
    assert set(train.indices).isdisjoint(val.indices)
    assert sorted(train.indices + val.indices) == list(range(len(native)))  # together: all the training data
    assert (len(train), len(val), len(test)) == (1006, 251, 540)
    assert create_dataset("digits", split="val").indices == val.indices  # the same samples every time
    labels = native.tensors[1].numpy()
    expected = np.bincount(labels) * len(val) / len(labels)
    assert np.abs(np.bincount(np.asarray(val.targets)) - expected).max() <= 1  # stratified
    assert torch.equal(val[0][0], native[val.indices[0]][0]) and val.targets[0] == int(native[val.indices[0]][1])

    def images(dataset):
        return {tuple(image.flatten().tolist()) for image, _ in dataset}

    assert images(val).isdisjoint(images(test)) and images(val).isdisjoint(images(train))  # by pixels, too
    assert "val: 251 of the 1257 training samples" in val.holdout


def test_every_adapter_with_training_data_holds_out_val():
    holds = {name for name in DATASETS.list() if dataset_spec(name).holdout}
    assert holds == {
        "mnist",
        "fashion-mnist",
        "kmnist",
        "cifar10",
        "cifar100",
        "svhn",
        "imagefolder",
        "tiny-imagenet",
        "npz",
        "digits",
    }


def test_npz_and_imagefolder_hold_val_out_of_a_train_folder_and_use_a_val_folder_of_the_users_own(tmp_path):
    for split in ("train", "test"):
        np.savez(tmp_path / f"{split}.npz", x=RNG.integers(0, 256, (30, 4, 4), dtype=np.uint8), y=np.arange(30) % 10)
    train, val = create_dataset("npz", root=tmp_path, split="train"), create_dataset("npz", root=tmp_path, split="val")
    assert (len(train), len(val)) == (20, 10) and set(train.indices).isdisjoint(val.indices)
    assert sorted(val.targets) == list(range(10))
    np.savez(tmp_path / "val.npz", x=np.zeros((3, 4, 4), dtype=np.uint8), y=np.array([0, 1, 2]))
    assert len(create_dataset("npz", root=tmp_path, split="val")) == 3  # the user's own val.npz
    assert len(create_dataset("npz", root=tmp_path, split="train")) == 30
    with pytest.raises(ConfigError, match="one file, no train.npz to hold a 'val' split out of"):
        create_dataset("npz", root=tmp_path / "test.npz", split="val")
    for index in range(4):
        for label in "ab":
            _png(tmp_path / "folder" / "train" / label / f"{index}.png", np.full((6, 6, 3), index, dtype=np.uint8))
    val = create_dataset("imagefolder", root=tmp_path / "folder", split="val")
    assert val.classes == ["a", "b"] and sorted(val.targets) == [0, 1] and len(val.samples) == 2
    assert len(create_dataset("imagefolder", root=tmp_path / "folder", split="train")) == 6
    (tmp_path / "tiny").mkdir()
    np.savez(tmp_path / "tiny" / "train.npz", x=np.zeros((3, 4, 4), dtype=np.uint8), y=np.array([0, 0, 1]))
    with pytest.raises(ConfigError, match="class 1 has 1.*at least 2 training samples"):
        create_dataset("npz", root=tmp_path / "tiny", split="train")


def test_train_records_that_it_fits_the_training_data_less_val(tmp_path):
    from typer.testing import CliRunner

    from fragscan.cli import app

    arguments = ["train", "digits-cnn", "digits", "--epochs", "1", "--quiet", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "training.json").read_text())
    assert record["train_split"] == "train" and record["holdout"].endswith("train: the other 1006")


def test_every_registered_adapter_is_covered_here():
    tested = {
        "mnist",
        "fashion-mnist",
        "kmnist",
        "cifar10",
        "cifar100",
        "svhn",
        "imagefolder",
        "tiny-imagenet",
        "npz",
        "digits",
    }
    builtin = {name for name in DATASETS.list() if DATASETS.entry(name).source == "builtin"}
    assert builtin == tested


def test_a_dataset_without_root_is_a_usage_error():
    with pytest.raises(ConfigError, match="--data-root"):
        create_dataset("cifar10")


@pytest.mark.parametrize("name", [name for name in DATASETS.list() if dataset_spec(name).needs_root])
def test_a_dataset_without_data_root_names_download_where_the_adapter_can_fetch(name):
    """Issue 23.13: `scan resnet50 cifar10` without data said --data-root only; --download exists for users online."""
    with pytest.raises(ConfigError) as refused:
        create_dataset(name)
    message = str(refused.value)
    assert message.startswith(f"dataset {name!r} reads files from disk; pass --data-root DIR")
    fetches = name in ("cifar10", "cifar100", "mnist", "fashion-mnist", "kmnist", "svhn")
    assert (f"--data-root DIR --download to fetch {name} into DIR" in message) == fetches, message
