"""Stage 3: train a classifier on the loader's in-memory images and record it in MLflow.

In the manner of torchvision's reference ``train.py``: :func:`get_args_parser`,
:func:`train_one_epoch` and :func:`evaluate` (from ``trainer.engine``) and :func:`main`;
:func:`train` is the in-process entry point and ``python -m trainer`` the command line. Under
``torchrun`` every process trains on its shard of each epoch's permutation (DistributedSampler)
and only rank 0 talks to MLflow and writes checkpoints.
"""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mlflow
import torch
from torch.nn.parallel import DistributedDataParallel

from augmenter import CutMix, MixUp, RandomFlip, RandomShift
from common import InvalidInput, ServiceUnavailable, get_settings
from runs import build_model, check_tracking, contract
from trainer import checkpoint, distributed, memory, mlflow_run, provenance, rerun
from trainer.cli import get_args_parser
from trainer.data import load, modality_warning, training_set
from trainer.data_warnings import warn_data
from trainer.engine import build_optimizer, build_scheduler, evaluate, train_one_epoch
from trainer.finish import finish, member_seed
from trainer.loop import Training, balanced_class_weights, build_ema
from trainer.operating_point import check_threshold_data, positive_warning
from trainer.resume import check_data, given_options, resume_args, start_anew

__all__ = ["evaluate", "get_args_parser", "main", "train", "train_one_epoch"]

log = logging.getLogger(__name__)

LOGGED_ARGS = [*contract.TRAINING_PARAMS, "data_dir"]


def train(argv: Sequence[str] | argparse.Namespace) -> str:
    """Train with command-line arguments (or parsed ones) and return the MLflow run id."""
    if isinstance(argv, argparse.Namespace):
        return main(argv)
    return main(get_args_parser().parse_args(list(argv)), given_options(argv))


def main(args: argparse.Namespace, given: set[str] | None = None) -> str:
    """Train as ``args`` says; return the MLflow run id (the same on every process). ``given``:
    the options the command line set itself (``trainer.resume.given_options``), which a resume
    compares with the run's settings (not known: those away from their defaults).

    Raises:
        ServiceUnavailable: MLflow does not answer (checked before any data is read).
        InvalidInput: Bad data (one class, no validation images), device or checkpoint, or
            ``--width`` with a model other than smallcnn, a ``--shift`` of half the image, a
            batch whose activations clearly exceed the free memory (``trainer.memory``).
    """
    dist_info = distributed.from_environment()
    mlflow_run.quiet()
    tracking_uri = args.tracking_uri or get_settings().mlflow_tracking_uri
    check_tracking(tracking_uri)
    if args.from_run:  # first: the run's settings, its threads and device included
        changed = rerun.apply(args, given, tracking_uri)
        if changed and dist_info.is_main:
            print(f"--from-run {args.from_run}: this command changes {'; '.join(changed)}",
                  file=sys.stderr, flush=True)  # fmt: skip
    if args.model != "smallcnn" and args.width != get_args_parser().get_default("width"):
        raise InvalidInput(
            f"--width sets the channels of smallcnn; --model {args.model} has its own fixed "
            "width: drop --width or use --model smallcnn"
        )
    device = distributed.resolve_device(args.device, dist_info)
    torch.set_num_threads(distributed.cpu_threads(args.threads, dist_info))
    checkpoint_dir = Path(args.checkpoint_dir or checkpoint.default_dir(args.experiment))
    # Rank 0 alone holds the folders (refused, it raises before the process group forms).
    held = checkpoint.hold_all(checkpoint_dir, args.resume) if dist_info.is_main else None
    try:
        state = checkpoint.find(args.resume, checkpoint_dir)
        command = dict(vars(args))  # the command's own settings, should auto start anew
        gone = None  # why the tracking server cannot continue the checkpoint's run (rank 0 asks)
        if state is not None and dist_info.is_main:
            gone = mlflow_run.not_continuable(state["run_id"], tracking_uri)
        if held is not None:
            resumed = state["run_id"] if state and not gone else None
            mlflow_run.settle(held, resumed, tracking_uri)
        distributed.init(dist_info, device)
        gone = distributed.broadcast(gone, dist_info)
        if state is not None:
            try:
                if gone:
                    raise InvalidInput(gone)
                resume_args(args, state, given)  # in place: the CLI reads stopped_early from it
            except InvalidInput as exc:
                start_anew(args, command, state, exc, held, tracking_uri)
                state = None
        path = checkpoint_dir / checkpoint.CHECKPOINT_NAME
        dataset = load(args, dist_info)
        # other data, decoding or validation split: told before any model is built
        if state is not None and (refusal := check_data(state, dataset, args, path)):
            loaded = dict(vars(args))
            start_anew(args, command, state, refusal, held, tracking_uri)
            state = refusal = None
            if vars(args) != loaded:  # loaded with the run's settings: the command's now
                dataset = None  # freed first: a data set may take much of the memory
                dataset = load(args, dist_info)
        member = state.get("member", 0) if state is not None else 0
        session = _session(args, dist_info, device, path, member, dataset)
        if state is not None:
            session.restore(state)
            if dist_info.is_main and (note := provenance.thread_change(state)):
                print(f"warning: {note}", file=sys.stderr, flush=True)
        return _train(session, state, tracking_uri, held)
    finally:
        try:
            distributed.shutdown(dist_info)
        finally:
            if held is not None:
                held.release()


def _session(args, dist_info, device, checkpoint_path: Path, member: int = 0,
             dataset=None) -> Training:  # fmt: skip
    seed = member_seed(args, member)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    if dataset is None:
        dataset = load(args, dist_info)
    train_set, val_set, preprocessing = training_set(dataset, args.modality)
    if (
        member == 0
        and dist_info.is_main
        and (note := modality_warning(dataset.stats, args.modality))
    ):
        print(f"warning: {note}", file=sys.stderr, flush=True)
    num_classes = len(preprocessing.class_names)
    if 2 * args.shift >= min(preprocessing.image_size):
        height, width = preprocessing.image_size
        raise InvalidInput(
            f"--shift {args.shift} can move a {height}×{width} training image half out of its "
            f"frame; use at most {(min(height, width) - 1) // 2} pixels (a few % of the size)"
        )
    if num_classes == 2 and args.target_sensitivity > 0:
        # fails before training on an unknown class; warns once when the names do not
        # confirm which class the threshold protects
        names = list(preprocessing.class_names)
        warning = positive_warning(names, args.positive_class, args.target_sensitivity)
        if warning and member == 0 and dist_info.is_main:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        check_threshold_data(
            dataset.val.labels,
            names,
            dataset.val_how,
            dataset.val_carve_units,
        )
    elif num_classes > 2 and args.positive_class is not None:  # it would be silently unused
        raise InvalidInput(
            f"--positive-class {args.positive_class!r} chooses a decision threshold for two-class "
            f"data; this data set has {num_classes} classes, whose decision is the most probable "
            "class: leave --positive-class out"
        )
    model = build_model(
        args.model,
        preprocessing.channels,
        num_classes,
        preprocessing.mean,
        preprocessing.std,
        args.dropout,
        width=args.width,
    )
    if member == 0:  # the members are alike: check once, before any training
        batch = min(args.batch_size, len(train_set))
        memory.check_training(model, args.model, preprocessing, batch, device,
                              dist_info.local_world_size)  # fmt: skip
    model = model.to(device)
    optimizer = build_optimizer(
        args.optimizer, model.parameters(), args.lr, args.weight_decay, args.momentum
    )
    scheduler = build_scheduler(
        optimizer,
        args.lr_schedule,
        args.epochs,
        args.lr_warmup_epochs,
        args.lr_warmup_decay,
        args.lr_step_size,
        args.lr_gamma,
    )
    net = model
    if dist_info.enabled:
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    mixer = None
    if args.augmentation != "none":
        kind, alpha = {"cutmix": (CutMix, args.cutmix_alpha), "mixup": (MixUp, args.mixup_alpha)}[
            args.augmentation
        ]
        mixer = kind(num_classes, alpha, args.cutmix_prob, args.per_sample_mix, generator)
    transforms: list[Callable[[torch.Tensor], torch.Tensor]] = []
    if args.flip != "none":
        transforms.append(
            RandomFlip(horizontal=True, vertical=args.flip == "both", generator=generator)
        )
    if args.shift:
        transforms.append(RandomShift(args.shift, generator=generator))
    if transforms:
        # not imported with the module: a trainer refusing its data spares ~1.5 s
        from torchvision.transforms import Compose

        augment = Compose(transforms)
    else:
        augment = None
    weights = None
    if args.class_balance == "loss":
        weights = balanced_class_weights(train_set.labels, num_classes)
    return Training(
        args, net, model, optimizer, scheduler, mixer, augment, generator, train_set, val_set,
        dist_info, device, checkpoint_path, dataset.content_hash,
        dataset=dataset, preprocessing=preprocessing, ema=build_ema(model, args.ema_decay),
        class_weights=weights, member=member, seed=seed,
    )  # fmt: skip


def _train(session: Training, state: dict[str, Any] | None, tracking_uri: str,
           held: checkpoint.Held | None) -> str:  # fmt: skip
    args, dist_info = session.args, session.dist_info
    status, run_id = "FAILED", None
    try:  # MLflow's errors from the first request on are one line (below), the run then ended
        if dist_info.is_main:
            run_id = _open(session, state, tracking_uri, held)
        session.run_id = distributed.broadcast(run_id, dist_info)
        # a resumed run that stopped early (its final logging cut short) only finishes it
        finished = session.early_stopped or session.run(args.max_epochs_this_session)
        while finished and session.member + 1 < args.ensemble:
            session = _next_member(session)
            left = args.max_epochs_this_session
            finished = session.run(left and left - session.epochs_run)
        if finished and dist_info.is_main:
            finish(session)
        status = "FINISHED" if finished else "KILLED"
        args.stopped_early = not finished  # the CLI's exit status says so
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (trainer.__main__): the checkpoint stays
        status = "KILLED"
        raise
    except (OSError, *mlflow_run.TRACKING_ERRORS) as exc:
        if failure := mlflow_run.store_failure(exc, tracking_uri):  # its artifacts unwritable
            raise ServiceUnavailable(failure) from exc
        if not isinstance(exc, mlflow_run.TRACKING_ERRORS):
            raise
        if getattr(exc, "error_code", None) in mlflow_run.REFUSALS:  # it answered: no outage
            active = mlflow.active_run()
            rid = session.run_id or (active.info.run_id if active else None)
            if not mlflow_run.deleted(rid, tracking_uri):
                raise  # a request of ours that the server refused: a bug to see in full
            status = None  # nothing to mark: the run is in MLflow's trash
            raise InvalidInput(
                f"the tracking server {tracking_uri} refused a request of this training: run "
                f"{rid} was deleted while it trained ({getattr(exc, 'message', exc)}); the "
                f"checkpoint is kept in {session.checkpoint_path.parent}: `mlflow runs restore "
                f"--run-id {rid}`, then the same command with --resume auto"
            ) from exc
        raise ServiceUnavailable(
            f"the tracking server {tracking_uri} stopped answering during training "
            f"({type(exc).__name__}: {str(exc)[:200]}); the checkpoint is kept: continue with "
            "the same command and --resume auto once it answers"
        ) from exc
    finally:
        if dist_info.is_main and mlflow.active_run() is not None:
            try:
                mlflow.end_run(status or "FAILED")
            except mlflow_run.TRACKING_ERRORS:  # down: the run shows what it was last marked
                if status and (said := unmarked(session.run_id, status, session.marked)):
                    log.warning("%s", said)
    return session.run_id


def unmarked(run_id: str, status: str, finished: bool) -> str | None:
    """The warning when run ``run_id`` could not be marked ``status`` at the end (the server
    down): what the run shows instead. ``finished``: the final logging marked it FINISHED
    already (None: nothing to say, when ``status`` is FINISHED too)."""
    if not finished:
        return f"could not mark run {run_id} {status}: it shows RUNNING until resumed"
    if status == "FINISHED":
        return None
    return (
        f"could not mark run {run_id} {status}: it shows FINISHED, as its final logging marked it"
    )


def _open(session: Training, state: dict[str, Any] | None, tracking_uri: str,
          held: checkpoint.Held | None) -> str:  # fmt: skip
    """Rank 0: start the run (its parameters and dataset statistics logged) or reopen the
    checkpoint's, name this trainer in it, claim the checkpoint folder for it and record the
    session (``trainer.provenance``: code, environment, threads)."""
    args = session.args
    mlflow.set_tracking_uri(tracking_uri)
    if state is None:
        run_id = mlflow_run.start(args.experiment, args.run_name, tracking_uri)
        mlflow_run.started(run_id, held)
        params = {key: getattr(args, key) for key in LOGGED_ARGS}
        params["data_dir"] = mlflow_run.logged_data_dir(args.data_dir, get_settings().data_dir)
        params.update(device=session.device.type, world_size=session.dist_info.world_size,
                      torch_threads=torch.get_num_threads())  # fmt: skip
        warning = warn_data(session.dataset.stats, args.class_names is not None)
        mlflow_run.log_setup(params, session.dataset, session.preprocessing, warning)
        if args.from_run:
            rerun.started(mlflow.MlflowClient(tracking_uri), run_id, args.from_run, session.dataset)
    else:
        run_id = mlflow_run.reopen(state["run_id"], tracking_uri)
        mlflow_run.started(run_id, held, resumed=True)
    checkpoint.claim(session.checkpoint_path.parent, run_id)  # auto continues it
    provenance.record_session(
        run_id, state is not None, session.progress["epoch"] + 1,
        session.member if args.ensemble > 1 else None, session.device, session.dist_info.world_size,
    )  # fmt: skip
    return run_id


def _next_member(done: Training) -> Training:
    """The session of the next ensemble member, with the finished members' best states; its
    checkpoint is written at once, so a resume starts the new member rather than the old one."""
    session = _session(
        done.args, done.dist_info, done.device, done.checkpoint_path, done.member + 1,
        done.dataset,
    )  # fmt: skip
    session.run_id = done.run_id
    session.members_done = [*done.members_done, done.progress["best"]]
    session.epochs_run = done.epochs_run
    if session.dist_info.is_main:
        session.save(finished=False)
    return session
