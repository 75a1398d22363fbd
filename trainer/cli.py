"""The trainer's command line (``python -m trainer --help``)."""

import argparse

from runs import MODEL_NAMES
from trainer import flags


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
        type=flags.class_names,
        default=None,
        metavar="NAME,NAME,...",
        help="a .npz's class names, of labels 0, 1, ... in order (MedMNIST files carry none: "
        "without it the classes, and the served model's answers, are '0', '1', ...; "
        "BreastMNIST: malignant,benign). A folder's classes are its subfolders' names",
    )
    data.add_argument(
        "--image-size",
        type=flags.side,
        default=None,
        help="resize to this many pixels square (default: native size, within --min-image-size and "
        "--max-image-size)",
    )
    data.add_argument(
        "--min-image-size",
        type=flags.side_bound,
        default=0,
        help="without --image-size, images whose shorter side is smaller are upsampled to it, "
        "aspect kept (0: native size). SmallCNN halves its input three times, so 28 px images "
        "leave it a 3x3 map; on BreastMNIST 56 raised validation AUC by about 0.01, clearly only "
        "on folds where copies of an image could leak, and on a colour check it lowered AUC "
        "(docs/model-quality.md), so validate it on your data",
    )
    data.add_argument(
        "--max-image-size",
        type=flags.side_bound,
        default=224,
        help="without --image-size, images whose longer side is larger are scaled down to it, "
        "aspect kept; it wins over --min-image-size (0: no limit). Radiographs and mammograms at "
        "native size exhaust memory: 200 training images of 1024 px were killed at 24 GB in the "
        "first epoch of a SmallCNN with batch 64",
    )
    data.add_argument(
        "--val-fraction",
        type=flags.below_one,
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
        type=flags.modalities,
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
    model.add_argument("--dropout", type=flags.probability, default=0.0)
    model.add_argument(
        "--width",
        type=flags.positive_int,
        default=32,
        help="smallcnn: channels of its first block (2x, 4x and 4x in the next three); "
        "the other models ignore it",
    )
    model.add_argument("--epochs", type=flags.positive_int, default=80)
    model.add_argument("--batch-size", type=flags.batch_size, default=64, help="per process")
    model.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adamw")
    model.add_argument("--lr", type=flags.positive_float, default=3e-3)
    model.add_argument("--momentum", type=flags.non_negative_float, default=0.9, help="SGD only")
    model.add_argument("--weight-decay", type=flags.non_negative_float, default=0.05)
    model.add_argument("--lr-schedule", choices=("cosine", "step", "none"), default="cosine")
    model.add_argument("--lr-warmup-epochs", type=flags.non_negative_int, default=1)
    model.add_argument(
        "--lr-warmup-decay",
        type=flags.warmup_factor,
        default=0.1,
        help="warm-up starts at lr times this",
    )
    model.add_argument("--lr-step-size", type=flags.positive_int, default=5, help="step schedule")
    model.add_argument("--lr-gamma", type=flags.positive_float, default=0.3, help="step schedule")
    model.add_argument(
        "--label-smoothing",
        type=flags.probability,
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
        type=flags.below_one,
        default=0.0,
        help="keep an exponential moving average of the weights (per step, e.g. 0.99); "
        "validation, model selection and the logged model then use it (0: off)",
    )
    model.add_argument(
        "--target-sensitivity",
        type=flags.probability,
        default=0.9,
        help="two classes: choose on validation the decision threshold that reaches this "
        "sensitivity for --positive-class; the evaluator applies it to test (0: off)",
    )
    model.add_argument(
        "--ood-quantile",
        type=flags.below_one,
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
        type=flags.positive_int,
        default=5,
        metavar="K",
        help="train K members alike, member k from seed SEED*K+k, each keeping the epoch "
        "--select names; the logged model averages their probabilities (1: one model; "
        "costs K times the training time)",
    )
    model.add_argument(
        "--patience",
        type=flags.non_negative_int,
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
    aug.add_argument("--cutmix-alpha", type=flags.positive_float, default=1.0)
    aug.add_argument(
        "--cutmix-prob",
        type=flags.probability,
        default=1.0,
        help="probability that an image (a batch, with --no-per-sample-mix) is mixed, CutMix "
        "or MixUp; 1 mixes every image, each with a box or weight of its own",
    )
    aug.add_argument("--mixup-alpha", type=flags.positive_float, default=0.2)
    aug.add_argument(
        "--per-sample-mix",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw the mixing box/weight and coin for every image, not once per batch",
    )
    aug.add_argument("--flip", choices=("none", "horizontal", "both"), default="horizontal")
    aug.add_argument(
        "--shift",
        type=flags.non_negative_int,
        default=0,
        metavar="PIXELS",
        help="move each training image by up to this many pixels in each direction (black "
        "border; 0: off)",
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--experiment", type=flags.name, default="mlpipeline", help="MLflow experiment name"
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
    run.add_argument("--seed", type=flags.seed, default=0)
    run.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:N")
    run.add_argument(
        "--threads",
        type=flags.non_negative_int,
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
        "--max-epochs-this-session", type=flags.positive_int, default=None, help=argparse.SUPPRESS
    )
    return parser
