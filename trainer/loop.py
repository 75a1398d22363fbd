"""The epoch loop: train, validate, log, keep the best model, stop early, checkpoint."""

import argparse
import functools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DistributedSampler

from augmenter import soft_cross_entropy
from common import InvalidInput
from runs import contract
from trainer import checkpoint, distributed
from trainer.engine import Batches, evaluate, train_one_epoch
from trainer.mlflow_run import outlasting
from trainer.resume import val_digest

# What ensemble members after the first log per epoch (as ``member<k>_<name>``).
MEMBER_CURVES = ("train_loss", "val_loss", "val_auc")


def build_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights and BatchNorm buffers, or None."""
    if decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """scikit-learn's "balanced" weights ``n / (K · count_k)`` (0 for an absent class)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.divide(len(labels), num_classes * counts, out=np.zeros(num_classes),
                        where=counts > 0)  # fmt: skip
    return torch.tensor(weights, dtype=torch.float32)


def balanced_indices(labels: np.ndarray, seed: int, epoch: int) -> list[int]:
    """``len(labels)`` indices drawn with replacement, each class equally likely (one epoch)."""
    counts = np.bincount(labels)
    weights = torch.from_numpy(1.0 / counts[labels])
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.multinomial(weights, len(labels), True, generator=generator).tolist()


def score(metrics: dict[str, float], select: str = "auc") -> tuple[float, ...]:
    """Model selection, higher is better: ``auc``, validation AUC (accuracy where AUC is
    undefined), ties to lower loss; ``loss``, lower validation loss (cross-entropy, a proper
    score: less noisy than a rank statistic on a small split)."""
    if select == "loss":
        return (-metrics["loss"],)
    main = metrics["auc"] if math.isfinite(metrics["auc"]) else metrics["accuracy"]
    return main, -metrics["loss"]


def improved(val: dict[str, float], best: dict[str, Any] | None, select: str = "auc") -> bool:
    """Whether this epoch's validation ``val`` replaces ``best`` (``select`` ``last``: always,
    so the model kept is the last epoch's and early stopping never triggers)."""
    return best is None or select == "last" or score(val, select) > score(best["metrics"], select)


@dataclass
class Training:
    """Everything one training session works with.

    Attributes:
        net: What is trained (``model`` itself, or it wrapped in DistributedDataParallel).
        model: The bare model, evaluated, checkpointed and logged.
        progress: ``epoch`` (last finished), ``best`` (``epoch``, ``metrics``, ``state``) and
            ``bad_epochs`` (since the best); saved in every checkpoint.
        member: Which ensemble member this session trains (0-based; see ``--ensemble``).
        seed: The member's seed (``--seed`` times the ensemble size, plus ``member``).
        members_done: The ``best`` of each member trained before this one.
        epochs_run: Epochs trained by :meth:`run` in this process.
        final: What the final logging records, chosen once (``trainer.finish``): checkpointed
            before any of it is logged, so that a resumed finish logs the same; None before.
        marked: The final logging marked the run FINISHED (in this process).
    """

    args: argparse.Namespace
    net: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    mixer: Any
    augment: Any  # flips and shifts of each batch, before mixing; None: none
    generator: torch.Generator
    train_set: Batches
    val_set: Batches
    dist_info: distributed.DistInfo
    device: torch.device
    checkpoint_path: Path
    data_hash: str
    run_id: str = ""
    dataset: Any = None
    preprocessing: Any = None
    ema: AveragedModel | None = None
    class_weights: torch.Tensor | None = None
    member: int = 0
    seed: int = 0
    members_done: list[dict[str, Any]] = field(default_factory=list)
    epochs_run: int = 0
    progress: dict[str, Any] = field(
        default_factory=lambda: {"epoch": 0, "best": None, "bad_epochs": 0}
    )
    # Resumed: the epochs whose metrics the run holds already (None: not read yet). A trainer
    # ended between logging an epoch and checkpointing it trains that epoch again.
    logged_epochs: set[int] | None = field(default=None, init=False)
    resumed: bool = field(default=False, init=False)
    final: dict[str, Any] | None = field(default=None, init=False)
    marked: bool = field(default=False, init=False)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`save`, whose data the caller checked
        against this session's (``resume.check_data``: files, image decoding, validation split;
        ``trainer.train.main`` does, before any model is built)."""
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        checkpoint.set_rng_state(state["rng"], self.generator)
        self.progress = {key: state[key] for key in self.progress}
        self.members_done = list(state.get("members_done", []))
        self.final = state.get("final")
        self.resumed = True
        self._say(
            f"resuming run {state['run_id']} after {self.member_label}epoch "
            f"{self.progress['epoch']}/{self.args.epochs} (its checkpoint is written to "
            f"{self.checkpoint_path})"
        )

    def save(self, finished: bool) -> None:
        checkpoint.save(
            self.checkpoint_path,
            {
                "run_id": self.run_id,
                "model": self.model.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": checkpoint.rng_state(self.generator),
                "args": vars(self.args),
                "dataset_hash": self.data_hash,
                "decoding_version": self.preprocessing.decoding_version,
                "val_digest": self.val_digest,
                "finished": finished,
                "member": self.member,
                "members_done": self.members_done,
                "torch_threads": torch.get_num_threads(),  # resumed on others: not bit-identical
                "final": self.final,
                **self.progress,
            },
        )

    @functools.cached_property
    def val_digest(self) -> str | None:
        """``resume.val_digest`` of this run's data: recorded in each checkpoint."""
        return val_digest(self.dataset)

    @property
    def selected_model(self) -> nn.Module:
        """What is validated, selected and logged: the EMA model when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def criterion(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.class_weights is None:
            return soft_cross_entropy(logits, targets, self.args.label_smoothing)
        if targets.ndim == 2:
            targets = targets.to(logits.dtype)
        weight = self.class_weights.to(logits.device)
        return F.cross_entropy(
            logits, targets, weight=weight, label_smoothing=self.args.label_smoothing
        )

    def epoch_indices(self, sampler: DistributedSampler, epoch: int) -> list[int]:
        """This process's training indices of ``epoch``: a shuffled shard, or with
        ``--class-balance sampler`` a class-balanced draw with replacement."""
        if getattr(self.args, "class_balance", "none") != "sampler":
            sampler.set_epoch(epoch)
            return list(sampler)
        drawn = balanced_indices(self.train_set.labels, self.seed, epoch)
        return drawn[self.dist_info.rank :: self.dist_info.world_size]

    def run(self, max_epochs: int | None = None) -> bool:
        """Train the remaining epochs; ``True`` when complete (all epochs or early stop),
        ``False`` when ``max_epochs`` (left of ``--max-epochs-this-session``) cut it short."""
        args = self.args
        sampler = DistributedSampler(
            range(len(self.train_set)),
            self.dist_info.world_size,
            self.dist_info.rank,
            shuffle=True,
            seed=self.seed,
        )
        first = self.progress["epoch"] + 1
        last = args.epochs
        if max_epochs is not None:
            last = min(last, first - 1 + max_epochs)
        for epoch in range(first, last + 1):
            stop = self.epoch(epoch, self.epoch_indices(sampler, epoch))
            self.epochs_run += 1
            if distributed.broadcast(stop, self.dist_info):
                self._say(f"early stop: no better validation score for {args.patience} epochs")
                return True
        return last == args.epochs

    def epoch(self, epoch: int, indices: list[int]) -> bool:
        """Train and validate one epoch; ``True`` when early stopping says stop."""
        started = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        sums = train_one_epoch(
            self.net,
            self.criterion,
            self.optimizer,
            self.train_set,
            indices,
            self.args.batch_size,
            self.device,
            self.mixer,
            self.augment,
            description=f"{self.member_label}epoch {epoch}/{self.args.epochs}",
            progress=self.args.progress and self.dist_info.is_main,
            on_step=(lambda: self.ema.update_parameters(self.model)) if self.ema else None,
        )
        self.scheduler.step()
        loss_sum, correct, seen = distributed.sum_all(list(sums), self.dist_info, self.device)
        if not math.isfinite(loss_sum):  # every process has the sum: all stop alike
            raise InvalidInput(
                f"training diverged: the {self.member_label}training loss of epoch {epoch} is "
                f"{loss_sum / seen} (the weights overflowed); lower --lr (now {self.args.lr:g}) "
                "or the other step sizes given (--weight-decay, --momentum, --lr-gamma)"
            )
        self.progress["epoch"] = epoch
        if not self.dist_info.is_main:
            return False
        val = evaluate(self.selected_model, self.val_set, self.device)
        metrics = {
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
            "val_auc": val["auc"],
            "lr": lr,
            "epoch_time": time.perf_counter() - started,
        }
        # Later members follow the first one's schedule at about its speed: only their curves.
        logged = {k: metrics[k] for k in MEMBER_CURVES} if self.member else metrics
        now = datetime.now(UTC)
        # With the metrics, in one request: when the run last reported (a RUNNING run that
        # stopped reporting has likely died; the dashboard says how long ago).
        report = {"at": now.isoformat(timespec="seconds"), "epoch": epoch,
                  "epochs": self.args.epochs, "member": self.member + 1,
                  "members": self.args.ensemble}  # fmt: skip
        stamp = int(now.timestamp() * 1000)
        if epoch in self._logged_before():  # the same epoch again (its RNG state restored)
            logged = {}
        batch = [Metric(self.metric_prefix + k, float(v), stamp, epoch) for k, v in logged.items()]
        tags = [RunTag(contract.PROGRESS_TAG, json.dumps(report))]
        # (a client is a few attribute reads, no request)
        outlasting(lambda: MlflowClient().log_batch(self.run_id, batch, tags=tags), self._say)
        best = self.progress["best"]
        if improved(val, best, getattr(self.args, "select", "auc")):
            model_state = self.selected_model.state_dict()
            state = {k: v.detach().cpu().clone() for k, v in model_state.items()}
            self.progress["best"] = {"epoch": epoch, "metrics": val, "state": state}
            self.progress["bad_epochs"] = 0
        else:
            self.progress["bad_epochs"] += 1
        self.save(finished=False)
        self._say(
            f"{self.member_label}epoch {epoch}/{self.args.epochs}  train loss "
            f"{metrics['train_loss']:.4f} acc {metrics['train_accuracy']:.3f}  val loss "
            f"{val['loss']:.4f} acc {val['accuracy']:.3f} auc {val['auc']:.4f}  "
            f"{metrics['epoch_time']:.1f}s"
        )
        return self.early_stopped

    @property
    def early_stopped(self) -> bool:
        """Whether the progress (trained, or restored) ends in an early stop: another epoch
        would train on where the run stopped, and could change the model kept."""
        return 0 < self.args.patience <= self.progress["bad_epochs"]

    def _logged_before(self) -> set[int]:
        """The epochs of a resumed session's run that hold metrics already (one request, at the
        first epoch after the resume); empty for a session that was not resumed."""
        if self.logged_epochs is None:
            key = self.metric_prefix + "val_loss"
            history = (
                outlasting(lambda: MlflowClient().get_metric_history(self.run_id, key), self._say)
                if self.resumed
                else []
            )
            self.logged_epochs = {m.step for m in history}
        return self.logged_epochs

    @property
    def metric_prefix(self) -> str:
        """Member 1 logs the usual names (a one-model run is unchanged); member k ``memberk_``."""
        return f"member{self.member + 1}_" if self.member else ""

    @property
    def member_label(self) -> str:
        ensemble = self.args.ensemble
        return f"member {self.member + 1}/{ensemble}  " if ensemble > 1 else ""

    def _say(self, message: str) -> None:
        if self.dist_info.is_main:
            print(message, file=sys.stderr, flush=True)
