"""The end of a training: the model kept (the last member's best epoch, or the ensemble of every
member's best), its decision threshold and out-of-distribution check, logged to the active MLflow
run with its validation figures; and what the console says about it (``trainer.verdict``)."""

import argparse
import copy
import shlex
import sys
import time

import mlflow
import torch

from common import ServiceUnavailable
from runs import Ensemble, contract
from trainer import mlflow_run, rerun, verdict
from trainer.engine import evaluate
from trainer.loop import Training
from trainer.ood import attach_check
from trainer.operating_point import choose_threshold


def member_seed(args: argparse.Namespace, member: int) -> int:
    """Member ``member``'s seed: ``--seed`` · K + ``member``, so that the members of different
    seeds' ensembles never coincide and a one-model run keeps ``--seed``."""
    return args.seed * args.ensemble + member


def _selected(session: Training) -> tuple[torch.nn.Module, dict[str, float], list[dict]]:
    """The model to log: the last member's best epoch, or the ensemble of every member's
    best; with its validation metrics and every member's ``best`` (first member first)."""
    best = session.progress["best"]
    model = session.selected_model
    model.load_state_dict(best["state"])
    bests = [*session.members_done, best]
    if len(bests) == 1:
        return model, best["metrics"], bests
    members = []
    for member in bests:
        copy_ = copy.deepcopy(model)
        copy_.load_state_dict(member["state"])
        members.append(copy_)
    ensemble = Ensemble(members).to(session.device)
    return ensemble, evaluate(ensemble, session.val_set, session.device), bests


def _ensemble_summary(args: argparse.Namespace, val: dict, bests: list[dict]) -> dict:
    """``ensemble.json``: how the members were combined, the ensemble's validation figures and
    each member's seed, best epoch and validation figures."""
    return {
        "combination": "mean of the members' softmax (the model outputs its log)",
        "ensemble": {"val_" + k: v for k, v in val.items()},
        "members": [
            {"member": k, "seed": member_seed(args, k - 1), "best_epoch": m["epoch"],
             **{"val_" + name: value for name, value in m["metrics"].items()}}
            for k, m in enumerate(bests, 1)
        ],
    }  # fmt: skip


def _log(session: Training, model: torch.nn.Module, point: dict | None, ood: float | None,
         results: dict[str, float], stamp: int, summary: dict | None) -> None:  # fmt: skip
    """Log the kept model (its decision threshold ``point``, out-of-distribution threshold
    ``ood``, ensemble ``summary``) and its figures ``results`` (at ``stamp``) in the active
    run, then mark it FINISHED; every step may be repeated (``mlflow_run.outlasting`` repeats
    them all after an outage)."""
    if point is not None:  # before the model, which marks the run trained: every reader of
        # the run (predictor, evaluator, dashboard) then finds the point the model carries
        mlflow.log_dict(point, contract.OPERATING_POINT_JSON)
        mlflow.log_params(
            {"decision_threshold": round(point["threshold"], 6),
             "positive_class": point["positive_class"]}
        )  # fmt: skip
    # a resumed finish keeps the first one's (a refit may differ in its last digits)
    if ood is not None and "ood_threshold" not in mlflow.get_run(session.run_id).data.params:
        mlflow.log_param("ood_threshold", round(ood, 6))
    mlflow_run.log_model(model, session.preprocessing, point)
    if summary is not None:
        mlflow.log_dict(summary, contract.ENSEMBLE_JSON)
    mlflow.log_metrics(results, timestamp=stamp)
    # FINISHED before the checkpoint is: a trainer stopped between the two resumes the run
    mlflow.MlflowClient().set_terminated(session.run_id, "FINISHED")


def _unlogged(session: Training, exc: BaseException) -> str:
    """The one line for an outage that outlasted the wait during the final logging: the
    training is done and kept; which command logs it once the server answers again."""
    args = session.args
    command = [
        "python", "-m", "trainer", "--data-dir", str(args.data_dir),
        "--experiment", args.experiment, "--tracking-uri", mlflow.get_tracking_uri(),
        "--checkpoint-dir", str(session.checkpoint_path.parent), "--resume", "auto",
    ]  # fmt: skip
    return (
        f"the tracking server {mlflow.get_tracking_uri()} stopped answering while the trained "
        f"model was being logged ({type(exc).__name__}: {str(exc)[:200]}), for longer than the "
        f"trainer waits ({mlflow_run.outage_wait_s():.0f} s); the training is complete and its "
        f"model is saved in the checkpoint {session.checkpoint_path}: once the server answers, "
        f"`{shlex.join(command)}` logs it in run {session.run_id} without training again"
    )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def finish(session: Training) -> None:
    """Log the best model (one, or the ensemble), its figures and (two classes) the decision
    threshold chosen on validation; mark the checkpoint finished."""
    model, val, bests = _selected(session)
    best_epoch = bests[0]["epoch"]
    args, names = session.args, list(session.preprocessing.class_names)
    point = None
    if len(names) == 2 and args.target_sensitivity > 0:  # chosen first: it travels with the model
        point = choose_threshold(
            model, session.val_set, session.device, names, args.positive_class,
            args.target_sensitivity,
        )  # fmt: skip
    ood = None
    if args.ood_quantile > 0:  # fitted on train, its threshold on validation; travels with it
        ood = attach_check(model, session.train_set, session.val_set, session.device, args)
    results = {"best_val_auc": val["auc"], "best_epoch": best_epoch}
    stamp = int(time.time() * 1000)  # one for every try: a metric logged again is the same
    summary = _ensemble_summary(args, val, bests) if len(bests) > 1 else None
    try:  # the whole logging again after an outage (each step may be repeated)
        mlflow_run.outlasting(
            lambda: _log(session, model, point, ood, results, stamp, summary), _say
        )  # fmt: skip
    except Exception as exc:
        if not mlflow_run.outage(exc):
            raise
        raise ServiceUnavailable(_unlogged(session, exc)) from exc
    session.save(finished=True)
    members = f" (ensemble of {args.ensemble}: first member's epoch)" if args.ensemble > 1 else ""
    print(
        f"kept model: validation AUC {val['auc']:.4f} (accuracy {val['accuracy']:.3f}) at epoch "
        f"{best_epoch}{members}; model: runs:/{session.run_id}/model",
        file=sys.stderr,
        flush=True,
    )
    for note in (verdict.chance_note(val["auc"], args.lr), verdict.threshold_note(point)):
        if note:
            print(f"warning: {note}", file=sys.stderr, flush=True)
    if args.from_run:  # the client of the active run's server
        result = rerun.finished(mlflow.MlflowClient(), session.run_id, args.from_run)
        print(f"rerun of run {args.from_run}: {result}", file=sys.stderr, flush=True)
