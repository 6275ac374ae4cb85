"""Selective retraining (method §7): fine-tune only a mask's trainable elements beside control arms, and
judge the arms on held-out samples; ``writing`` and ``html`` put a result on disk."""

from .experiment import RetrainResult, retrain  # noqa: F401
