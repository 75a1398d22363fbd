"""The end of a training: the model kept (the last member's best epoch, or the ensemble of every
member's best), its decision threshold and out-of-distribution check, logged to the active MLflow
run with its validation figures; and what the console says about it (``trainer.verdict``)."""

import argparse
import copy
import sys

import mlflow
import torch

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
    if point is not None:  # before the model, which marks the run trained: every reader of
        # the run (predictor, evaluator, dashboard) then finds the point the model carries
        mlflow.log_dict(point, contract.OPERATING_POINT_JSON)
        mlflow.log_params(
            {"decision_threshold": round(point["threshold"], 6),
             "positive_class": point["positive_class"]}
        )  # fmt: skip
    if args.ood_quantile > 0:  # fitted on train, its threshold on validation; travels with it
        attach_check(model, session.train_set, session.val_set, session.device, args)
    mlflow_run.log_model(model, session.preprocessing, point)
    if len(bests) > 1:
        mlflow.log_dict(_ensemble_summary(args, val, bests), contract.ENSEMBLE_JSON)
    mlflow.log_metrics({"best_val_auc": val["auc"], "best_epoch": best_epoch})
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
