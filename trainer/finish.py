"""The end of a training: the model kept (the last member's best epoch, or the ensemble of every
member's best), its decision threshold and out-of-distribution check, logged to the active MLflow
run with its validation figures; and what the console says about it (``trainer.verdict``)."""

import argparse
import copy
import math
import shlex
import sys
import time

import mlflow
import torch

from common import Conflict, ServiceUnavailable
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


def _selected(session: Training) -> tuple[torch.nn.Module, list[dict]]:
    """The model to log: the last member's best epoch, or the ensemble of every member's
    best; with every member's ``best`` (first member first)."""
    best = session.progress["best"]
    model = session.selected_model
    model.load_state_dict(best["state"])
    bests = [*session.members_done, best]
    if len(bests) == 1:
        return model, bests
    members = []
    for member in bests:
        copy_ = copy.deepcopy(model)
        copy_.load_state_dict(member["state"])
        members.append(copy_)
    return Ensemble(members).to(session.device), bests


def _chosen(session: Training, model: torch.nn.Module, bests: list[dict]) -> dict:
    """What the final logging records of ``model`` (``Training.final``): its validation
    figures, its decision threshold (two classes), the out-of-distribution check it carries
    (stored on it) and the time its figures are logged at. Chosen once: a resumed finish, on
    other threads or another device, could choose other last digits than the run records."""
    args, names = session.args, list(session.preprocessing.class_names)
    val = bests[0]["metrics"]
    if len(bests) > 1:
        val = evaluate(model, session.val_set, session.device)
    point = None
    if len(names) == 2 and args.target_sensitivity > 0:  # chosen first: it travels with the model
        point = choose_threshold(
            model, session.val_set, session.device, names, args.positive_class,
            args.target_sensitivity,
        )  # fmt: skip
    ood = None
    if args.ood_quantile > 0:  # fitted on train, its threshold on validation; travels with it
        ood = attach_check(model, session.train_set, session.val_set, session.device, args)
    return {"val": val, "point": point, "ood_threshold": ood,
            "ood_reference": getattr(model, "ood_reference", None) if ood is not None else None,
            "stamp": int(time.time() * 1000)}  # fmt: skip


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


def _log(session: Training, model: torch.nn.Module, final: dict, results: dict[str, float],
         summary: dict | None) -> None:  # fmt: skip
    """Log the kept model (with ``final``'s decision threshold and out-of-distribution check),
    the ensemble ``summary`` and the figures ``results`` in the active run, then mark it
    FINISHED; every step may be repeated (``mlflow_run.outlasting`` repeats them all after an
    outage, a resumed trainer after a longer one): what a try before recorded is not logged
    again."""
    data = mlflow.get_run(session.run_id).data
    point, ood = final["point"], final["ood_threshold"]
    params = {}
    if point is not None:  # before the model, which marks the run trained: every reader of
        # the run (predictor, evaluator, dashboard) then finds the point the model carries
        mlflow.log_dict(point, contract.OPERATING_POINT_JSON)
        params = {"decision_threshold": round(point["threshold"], 6),
                  "positive_class": point["positive_class"]}  # fmt: skip
    if ood is not None:
        params["ood_threshold"] = round(ood, 6)
    if new := {k: v for k, v in params.items() if data.params.get(k) != str(v)}:
        mlflow.log_params(new)  # (another value recorded: refused, INVALID_PARAMETER_VALUE)
    mlflow_run.log_model(model, session.preprocessing, point)
    if summary is not None:
        mlflow.log_dict(summary, contract.ENSEMBLE_JSON)
    if new := {k: v for k, v in results.items() if not _same(data.metrics.get(k), v)}:
        mlflow.log_metrics(new, timestamp=final["stamp"])  # the first try's time
    # FINISHED before the checkpoint is: a trainer stopped between the two resumes the run
    mlflow.MlflowClient().set_terminated(session.run_id, "FINISHED")


def _same(logged: float | None, value: float) -> bool:
    """Whether the run's latest ``logged`` value of a metric is ``value`` (NaN as NaN)."""
    return logged is not None and (logged == value or (math.isnan(logged) and math.isnan(value)))


def _unlogged(session: Training, exc: BaseException) -> str:
    """The one line for an outage that outlasted the wait during the final logging: the
    training is done and kept; which command logs it once the server answers again."""
    args = session.args
    command = [  # a resume takes --device and --threads from its command line
        "python", "-m", "trainer", "--data-dir", str(args.data_dir),
        "--experiment", args.experiment, "--tracking-uri", mlflow.get_tracking_uri(),
        "--checkpoint-dir", str(session.checkpoint_path.parent),
        "--device", str(session.device), "--threads", str(torch.get_num_threads()),
        "--resume", "auto",
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


def _refused(session: Training, exc: BaseException) -> str:
    """The one line for a run that refused a value of the final logging: it records another,
    set by hand, by another trainer, or by a try whose checkpoint predates ``Training.final``
    (the resumed finish chose its values again)."""
    return (
        f"run {session.run_id} refused the final logging of this training "
        f"({getattr(exc, 'message', exc)}): the run records another value there than this "
        f"training logs; the trained model is kept in the checkpoint {session.checkpoint_path}, "
        "but this run cannot hold it: train it in a new run (without --resume)"
    )


def finish(session: Training) -> None:
    """Log the best model (one, or the ensemble), its figures and (two classes) the decision
    threshold chosen on validation; mark the checkpoint finished. What is logged is chosen
    once and checkpointed first (``Training.final``): a resumed finish logs the same."""
    model, bests = _selected(session)
    if session.final is None:
        session.final = _chosen(session, model, bests)
        session.save(finished=False)
    elif session.final["ood_reference"] is not None:
        model.ood_reference = session.final["ood_reference"]
    final, best_epoch, args = session.final, bests[0]["epoch"], session.args
    val, point = final["val"], final["point"]
    results = {"best_val_auc": val["auc"], "best_epoch": best_epoch}
    summary = _ensemble_summary(args, val, bests) if len(bests) > 1 else None
    try:  # the whole logging again after an outage (each step may be repeated)
        mlflow_run.outlasting(lambda: _log(session, model, final, results, summary), _say)
    except Exception as exc:
        if mlflow_run.outage(exc):
            raise ServiceUnavailable(_unlogged(session, exc)) from exc
        if getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE" and not (
            mlflow_run.deleted(session.run_id, mlflow.get_tracking_uri())
        ):  # (a deleted run refuses every request: trainer.train says so)
            raise Conflict(_refused(session, exc)) from exc
        raise
    session.marked = True
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
