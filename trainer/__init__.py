"""Stage 3: train a classifier with CutMix and record it in MLflow (``python -m trainer``)."""

from trainer.train import evaluate, get_args_parser, main, train, train_one_epoch

__all__ = ["evaluate", "get_args_parser", "main", "train", "train_one_epoch"]
