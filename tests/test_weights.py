"""Weights: safetensors and torch files round trip; wrapped checkpoints; mismatches named; pretrained adaptation."""

import pytest
import torch
from safetensors.torch import save_file

from fragscan.base.errors import InputError
from fragscan.models import create_model
from fragscan.models.weights import adapt_pretrained, load_state_dict

SHAPE = dict(num_classes=4, input_size=(1, 12, 12))


def _trained_looking(name="small-cnn"):
    model = create_model(name, **SHAPE)
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.net.parameters():
            parameter.normal_()
    return model


@pytest.mark.parametrize("form", ["safetensors", "pt", "pth state_dict wrapper", "pt module. prefix"])
def test_weights_round_trip(tmp_path, form):
    source = _trained_looking()
    state = {k: v.contiguous() for k, v in source.net.state_dict().items()}
    if form == "safetensors":
        path = tmp_path / "w.safetensors"
        save_file(state, str(path))
    elif form == "pt":
        path = tmp_path / "w.pt"
        torch.save(state, path)
    elif form == "pth state_dict wrapper":
        path = tmp_path / "w.pth"
        torch.save({"state_dict": state, "epoch": 3}, path)
    else:
        path = tmp_path / "w.pt"
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    loaded = create_model("small-cnn", weights=path, **SHAPE)
    for key, value in source.net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
    pixels = torch.rand(3, 1, 12, 12)
    assert torch.equal(loaded(pixels), source(pixels))


def test_timm_and_torchvision_models_load_their_own_state_dicts(tmp_path):
    for name in ("timm:resnet18", "tv:shufflenet_v2_x1_0"):
        source = _trained_looking(name)
        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in source.net.state_dict().items()}, str(path))
        loaded = create_model(name, weights=path, **SHAPE)
        assert all(torch.equal(loaded.net.state_dict()[k], v) for k, v in source.net.state_dict().items())


def test_a_pickle_with_code_is_refused(tmp_path):
    class Hostile:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "w.pt"
    torch.save({"weight": Hostile()}, path)
    with pytest.raises(InputError, match=r"pickled object \(print\).*never unpickles"):
        load_state_dict(path)


def test_weights_that_do_not_fit_name_the_first_mismatch(tmp_path):
    state = {
        k: v.contiguous()
        for k, v in create_model("small-cnn", num_classes=7, input_size=(1, 12, 12)).net.state_dict().items()
    }
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    with pytest.raises(
        InputError, match=r"'classifier.3.(weight|bias)' has shape \(7,( 64)?\), the model expects \(4,( 64)?\)"
    ):
        create_model("small-cnn", weights=path, **SHAPE)
    state.pop("features.0.weight")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(path))
    with pytest.raises(InputError, match="missing 'features.0.weight', unexpected 'extra.weight'"):
        create_model("small-cnn", weights=path, **SHAPE)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="cannot read weights"):
        create_model("small-cnn", weights=tmp_path / "junk.safetensors", **SHAPE)


def test_pretrained_weights_are_adapted_to_channels_and_classes(tmp_path):
    """An ImageNet-shaped file (3 channels, 1000 classes) into a 1-channel, 4-class network."""
    imagenet = create_model("tv:resnet18", num_classes=1000, input_size=(3, 32, 32)).net
    path = tmp_path / "imagenet.safetensors"
    save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()}, str(path))
    model = create_model("tv:resnet18", weights=path, pretrained=True, **SHAPE)
    assert torch.allclose(model.net.conv1.weight, imagenet.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(model.net.layer1[0].conv1.weight, imagenet.layer1[0].conv1.weight)
    assert model.net.fc.weight.shape == (4, 512)
    assert any("fc.weight" in note and "afresh" in note for note in model.notes)
    assert model.spec.mean == (pytest.approx(0.449, abs=1e-3),)  # ImageNet's, averaged for one channel


def test_timm_pretrained_file_goes_through_timms_adaptation(tmp_path):
    imagenet = create_model("timm:resnet18", num_classes=1000, input_size=(3, 32, 32)).net
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()}, str(path))
    model = create_model("timm:resnet18", weights=path, pretrained=True, **SHAPE)
    assert torch.allclose(model.net.conv1.weight, imagenet.conv1.weight.sum(1, keepdim=True))
    assert model.net.fc.weight.shape == (4, 512) and model.notes


def test_adapt_pretrained_needs_every_key(tmp_path):
    net = create_model("small-cnn", **SHAPE).net
    with pytest.raises(InputError, match="missing"):
        adapt_pretrained(net, {}, source="empty")
