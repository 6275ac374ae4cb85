"""Regenerate the embedded default's weights: fragscan/weights/digits_cnn.safetensors (+ .json).

    python scripts/make_digits_weights.py

Deterministic on CPU for a given torch version; the sidecar records settings and accuracy.
Trained on the ``train`` split, which holds no ``val`` sample (fragscan.data.hold_out_val), so
scans of ``val`` for retrain masks see data the weights were not fitted to.
"""

import json
import platform
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file

from fragscan.data import create_dataset
from fragscan.data.digits import SPLIT_DESCRIPTION
from fragscan.models import MODELS, Normalized, model_spec
from fragscan.models.digits import DIGITS_CNN_WEIGHTS
from fragscan.models.train import TrainSettings, accuracy, train


def main() -> None:
    torch.use_deterministic_algorithms(True)
    settings = TrainSettings(epochs=30, seed=0)
    spec = model_spec("digits-cnn")
    torch.manual_seed(settings.seed)
    model = Normalized(MODELS.get("digits-cnn")(), spec)
    train_set = create_dataset("digits", split="train")
    train(model, train_set, settings)
    test_accuracy = accuracy(model, create_dataset("digits", split="test"))
    val_accuracy = accuracy(model, create_dataset("digits", split="val"))
    train_accuracy = accuracy(model, train_set)
    DIGITS_CNN_WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.net.state_dict().items()}
    save_file(state, str(DIGITS_CNN_WEIGHTS), metadata={"model": "digits-cnn"})
    sidecar = {
        "model": "digits-cnn",
        "dataset": "digits",
        "split": f"{SPLIT_DESCRIPTION}; {train_set.holdout}",
        "training": asdict(settings) | {"optimizer": "Adam", "loss": "cross-entropy"},
        "train_accuracy": train_accuracy,
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "python scripts/make_digits_weights.py",
    }
    Path(DIGITS_CNN_WEIGHTS.with_suffix(".json")).write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"test accuracy {test_accuracy:.4f}, train accuracy {train_accuracy:.4f} -> {DIGITS_CNN_WEIGHTS}")


if __name__ == "__main__":
    main()
