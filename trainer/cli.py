"""The trainer's command line (``python -m trainer --help``)."""

import argparse
import math

from dataloader import MAX_IMAGE_SIDE, parse_modalities
from runs import MODEL_NAMES


def _number(text: str, kind: type[int] | type[float] = float) -> float:
    """``text`` as a number of ``kind``; an ``ArgumentTypeError`` that says so otherwise (argparse
    would name the converting function: "invalid _below_one value")."""
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def _side(text: str, least: int = 1) -> int:
    """An image side in pixels, as the loader takes it: ``least`` to ``MAX_IMAGE_SIDE``."""
    value = _number(text, int)
    if not least <= value <= MAX_IMAGE_SIDE:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of pixels from {least} to {MAX_IMAGE_SIDE}, got {text}"
        )
    return value


def _side_bound(text: str) -> int:
    """``--min-image-size`` / ``--max-image-size``: a side, or 0 (no bound)."""
    return _side(text, least=0)


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, got {text}")
    return value


def _seed(text: str) -> int:
    """A seed numpy's generators take: a whole number from 0 to 2**32 - 1."""
    value = _number(text, int)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 4294967295, got {text}")
    return value


def _warmup_factor(text: str) -> float:
    """What the warm-up multiplies the learning rate by at its start: in (0, 1]."""
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {text}")
    return value


def _name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _probability(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def _below_one(text: str) -> float:
    """A value in ``[0, 1)``, 0 turning the option off (``--ema-decay``, ``--ood-quantile``, and
    ``--val-fraction``: none carved, a ``val/`` folder needed)."""
    value = _number(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (0: off), got {text}")
    return value


def _class_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if len(names) < 2 or not all(names):
        raise argparse.ArgumentTypeError(
            f"must name every class, comma-separated, e.g. malignant,benign; got {text!r}"
        )
    if len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"names a class twice: {text!r}")
    if odd := [name for name in names if "/" in name or "\\" in name or name.startswith(".")]:
        # as import-medmnist refuses them: the file's imported folders must be able to match
        raise argparse.ArgumentTypeError(
            f"{odd[0]!r} cannot be a class (folder) name: no '/' or '\\', no leading '.'"
        )
    return names


def _modalities(text: str) -> str:
    """``"us, CT"`` → ``"CT,US"``: DICOM Modality codes, checked, as the run's parameter."""
    try:
        return ",".join(parse_modalities(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _batch_size(text: str) -> int:
    value = _number(text, int)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 (BatchNorm needs it), got {text}")
    return value


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it says something: not for a switch (``--no-progress
    (default: True)`` read as the switch's own effect), not None, not where the help names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        if "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The parser of every training option; defaults train a good small model on 2 CPU cores."""
    parser = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Train an image classifier and log it to MLflow; prints the run id last.",
        add_help=add_help,
        formatter_class=_Help,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data-dir",
        default="data",
        help="folder with train/ [val/] test/ <class>/ images, or a MedMNIST .npz file",
    )
    data.add_argument(
        "--class-names",
        type=_class_names,
        default=None,
        metavar="NAME,NAME,...",
        help="a .npz's class names, of labels 0, 1, ... in order (MedMNIST files carry none: "
        "without it the classes, and the served model's answers, are '0', '1', ...; "
        "BreastMNIST: malignant,benign). A folder's classes are its subfolders' names",
    )
    data.add_argument(
        "--image-size",
        type=_side,
        default=None,
        help="resize to this many pixels square (default: native size, within --min-image-size and "
        "--max-image-size)",
    )
    data.add_argument(
        "--min-image-size",
        type=_side_bound,
        default=0,
        help="without --image-size, images whose shorter side is smaller are upsampled to it, "
        "aspect kept (0: native size). SmallCNN halves its input three times, so 28 px images "
        "leave it a 3x3 map; on BreastMNIST 56 raised validation AUC by about 0.01, clearly only "
        "on folds where copies of an image could leak, and on a colour check it lowered AUC "
        "(docs/model-quality.md), so validate it on your data",
    )
    data.add_argument(
        "--max-image-size",
        type=_side_bound,
        default=224,
        help="without --image-size, images whose longer side is larger are scaled down to it, "
        "aspect kept; it wins over --min-image-size (0: no limit). Radiographs and mammograms at "
        "native size exhaust memory: 200 training images of 1024 px were killed at 24 GB in the "
        "first epoch of a SmallCNN with batch 64",
    )
    data.add_argument(
        "--val-fraction",
        type=_below_one,
        default=0.1,
        help="share of train/ held out for validation when there is no val/ (by group when the "
        "images have groups)",
    )
    data.add_argument(
        "--groups-file",
        default=None,
        metavar="CSV",
        help="manifest file,group giving each image its patient (default: DATA_DIR/groups.csv "
        "when present, else DICOM PatientID, else the folder below each class folder when "
        "train has at least 10 such folders)",
    )
    data.add_argument(
        "--modality",
        type=_modalities,
        default=None,
        metavar="CODE[,CODE]",
        help="the DICOM Modality of the training images (US, CT, MR, CR, DX, MG, XC for "
        "clinical photographs, DMS for dermoscopy, OT...), which the model records and serves "
        "alone: a DICOM input of another modality is refused. DICOM training files give theirs "
        "(declaring others is an error); PNG/JPEG need it, else the model records none and "
        "refuses no modality",
    )
    data.add_argument(
        "--allow-group-overlap",
        action="store_true",
        help="accept a patient with images in test and in train/val (an error otherwise)",
    )

    model = parser.add_argument_group("model and optimization")
    model.add_argument("--model", choices=MODEL_NAMES, default="smallcnn")
    model.add_argument("--dropout", type=_probability, default=0.0)
    model.add_argument(
        "--width",
        type=_positive_int,
        default=32,
        help="smallcnn: channels of its first block (2x, 4x and 4x in the next three); "
        "the other models ignore it",
    )
    model.add_argument("--epochs", type=_positive_int, default=80)
    model.add_argument("--batch-size", type=_batch_size, default=64, help="per process")
    model.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adamw")
    model.add_argument("--lr", type=_positive_float, default=3e-3)
    model.add_argument("--momentum", type=_non_negative_float, default=0.9, help="SGD only")
    model.add_argument("--weight-decay", type=_non_negative_float, default=0.05)
    model.add_argument("--lr-schedule", choices=("cosine", "step", "none"), default="cosine")
    model.add_argument("--lr-warmup-epochs", type=_non_negative_int, default=1)
    model.add_argument(
        "--lr-warmup-decay",
        type=_warmup_factor,
        default=0.1,
        help="warm-up starts at lr times this",
    )
    model.add_argument("--lr-step-size", type=_positive_int, default=5, help="step schedule")
    model.add_argument("--lr-gamma", type=_positive_float, default=0.3, help="step schedule")
    model.add_argument(
        "--label-smoothing",
        type=_probability,
        default=0.1,
        help="mix this share of a uniform distribution into every training target, CutMix's "
        "and MixUp's soft ones included (0: off); logged as the param label_smoothing",
    )
    model.add_argument(
        "--class-balance",
        choices=("none", "loss", "sampler"),
        default="none",
        help="for imbalanced classes: weight the loss by inverse class frequency, or draw "
        "training images with equal probability per class (with replacement)",
    )
    model.add_argument(
        "--ema-decay",
        type=_below_one,
        default=0.0,
        help="keep an exponential moving average of the weights (per step, e.g. 0.99); "
        "validation, model selection and the logged model then use it (0: off)",
    )
    model.add_argument(
        "--target-sensitivity",
        type=_probability,
        default=0.9,
        help="two classes: choose on validation the decision threshold that reaches this "
        "sensitivity for --positive-class; the evaluator applies it to test (0: off)",
    )
    model.add_argument(
        "--ood-quantile",
        type=_below_one,
        default=0.99,
        metavar="Q",
        help="out-of-distribution check carried by the model: an image whose features lie "
        "farther from the training images' than this quantile of the validation images' is "
        "flagged in every answer (about 1-Q of new images like the validation ones are, 1 in "
        "n+1 with n < Q/(1-Q) validation images; see mlpipeline_model/ood.py; 0: off)",
    )
    model.add_argument(
        "--positive-class",
        default=None,
        help="two classes: the class whose sensitivity the threshold targets, a name or label "
        "number (default: the class beside one named normal, benign, healthy, negative, "
        "control or no/non/not ...; else the second class, label 1, with a warning)",
    )
    model.add_argument(
        "--ensemble",
        type=_positive_int,
        default=5,
        metavar="K",
        help="train K members alike, member k from seed SEED*K+k, each keeping the epoch "
        "--select names; the logged model averages their probabilities (1: one model; "
        "costs K times the training time)",
    )
    model.add_argument(
        "--patience",
        type=_non_negative_int,
        default=10,
        help="stop after this many epochs without a better validation score (see --select; "
        "0: never)",
    )
    model.add_argument(
        "--select",
        choices=("auc", "loss", "last"),
        default="last",
        help="the epoch each model keeps: the last one trained (the schedule run to its end; "
        "validation then only measures it and chooses the threshold), the best validation AUC "
        "(ties to lower loss), or the lowest validation loss; see docs/model-quality.md",
    )

    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--augmentation", choices=("cutmix", "mixup", "none"), default="cutmix")
    aug.add_argument("--cutmix-alpha", type=_positive_float, default=1.0)
    aug.add_argument(
        "--cutmix-prob",
        type=_probability,
        default=1.0,
        help="probability that an image (a batch, with --no-per-sample-mix) is mixed, CutMix "
        "or MixUp; 1 mixes every image, each with a box or weight of its own",
    )
    aug.add_argument("--mixup-alpha", type=_positive_float, default=0.2)
    aug.add_argument(
        "--per-sample-mix",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw the mixing box/weight and coin for every image, not once per batch",
    )
    aug.add_argument("--flip", choices=("none", "horizontal", "both"), default="horizontal")
    aug.add_argument(
        "--shift",
        type=_non_negative_int,
        default=0,
        metavar="PIXELS",
        help="move each training image by up to this many pixels in each direction (black "
        "border; 0: off)",
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--experiment", type=_name, default="mlpipeline", help="MLflow experiment name"
    )
    run.add_argument("--run-name", default=None)
    run.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or the settings)",
    )
    run.add_argument(
        "--from-run",
        default=None,
        metavar="RUN_ID",
        help="train again with the settings, data folder, CPU threads and device this run "
        "recorded (options given here win and are named) and say whether the weights came out "
        "the same (tag pipeline.rerun_result)",
    )
    run.add_argument("--seed", type=_seed, default=0)
    run.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:N")
    run.add_argument(
        "--threads",
        type=_non_negative_int,
        default=0,
        help="CPU threads per process (0: OMP_NUM_THREADS when set and one process runs, else "
        "the cores shared among torchrun's local processes). The count changes the trained "
        "weights: the run records it (param torch_threads, tag pipeline.sessions)",
    )
    run.add_argument(
        "--checkpoint-dir",
        default=None,
        help="default: $CHECKPOINT_DIR/<experiment> (CHECKPOINT_DIR: .state/checkpoints)",
    )
    run.add_argument(
        "--resume",
        default=None,
        metavar="auto|PATH",
        help="continue the MLflow run of a checkpoint (auto: the experiment's last run when it "
        "is unfinished and has a checkpoint, else start anew; PATH: a last.pt, its folder, or "
        "the last-<run id>.pt a newer run kept) with the run's own settings: a flag set to "
        "another value is refused",
    )
    run.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )
    # Stops (as if interrupted) after this many epochs; for resume tests.
    run.add_argument(
        "--max-epochs-this-session", type=_positive_int, default=None, help=argparse.SUPPRESS
    )
    return parser
