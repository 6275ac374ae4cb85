"""A threat profile's spec, ``"FGSM@0.02,0.05;PGD@0.05"``, read into its entries: plain text checks with
no torch, so the settings (:mod:`fragscan.config`) and the audit can check a spec without importing the
attacks (:mod:`fragscan.sweep.threats` resolves and runs it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

SYNTAX = "write ATTACK@EPS[,EPS...][;ATTACK@EPS...], e.g. 'FGSM@0.02,0.05;PGD@0.05'"


@dataclass(frozen=True)
class Entry:
    """One attack at one budget of a profile, as the spec names it."""

    attack: str
    eps: float | str  # a number in [0, 1], or "auto"


def parse(spec: str) -> tuple[Entry, ...]:
    """The spec's entries in its order; ValueError (one line, naming ``--threat``) on anything that is
    not a list of attacks with budgets in [0, 1], or that names an (attack, budget) twice. Attack
    names are checked later (:func:`check`), once plugins that register attacks are loaded."""
    entries: list[Entry] = []
    parts = [part.strip() for part in spec.split(";")]
    if not any(parts):
        raise ValueError(f"--threat is empty; {SYNTAX}")
    for part in parts:
        if not part:
            raise ValueError(f"--threat {spec!r} has an empty entry between ';'; {SYNTAX}")
        attack, at, budgets = (piece.strip() for piece in part.partition("@"))
        if not at or not attack:
            raise ValueError(f"--threat entry {part!r} names no {'budget' if attack else 'attack'}; {SYNTAX}")
        texts = [text.strip() for text in budgets.split(",")]
        if not all(texts):
            raise ValueError(f"--threat entry {part!r} has an empty budget; {SYNTAX}")
        for text in texts:
            entry = Entry(attack, _budget(text, part))
            if entry in entries:
                raise ValueError(f"--threat names {attack}@{text} twice; name each attack and budget once")
            entries.append(entry)
    return tuple(entries)


def _budget(text: str, part: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--threat entry {part!r}: budget {text!r} is not a number or 'auto'") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"--threat entry {part!r}: budget {text} is outside [0, 1] (pixels, as --eps)")
    return value
