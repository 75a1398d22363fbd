import pytest

from trainer import get_args_parser


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], "at least 1"),
        (["--model", "vgg"], "invalid choice"),
        (["--cutmix-prob", "2"], "probability in [0, 1]"),
        (["--batch-size", "1"], "BatchNorm"),
        (["--optimizer", "lbfgs"], "invalid choice"),
        (["--min-image-size", "-1"], "from 0 to 4096, got -1"),
        (["--image-size", "5000"], "--image-size: must be a whole number of pixels from 1 to 4096"),
        (["--max-image-size", "4097"], "--max-image-size: must be a whole number of pixels from 0"),
        (["--val-fraction", "1"], "--val-fraction: must be in [0, 1)"),
        (["--class-names", "malignant"], "must name every class"),
        (["--class-names", "a,,b"], "must name every class"),
        (["--class-names", "a,b,a"], "names a class twice"),
        (["--class-names", "a,../b"], "cannot be a class (folder) name"),
        (["--ood-quantile", "1"], "must be in [0, 1)"),
        (["--ood-quantile", "abc"], "--ood-quantile: must be a number, got 'abc'"),
        (["--epochs", "ten"], "--epochs: must be a whole number, got 'ten'"),
        (["--lr", "inf"], "--lr: must be a finite number above 0, got inf"),
        (["--cutmix-alpha", "inf"], "must be a finite number above 0"),
        (["--weight-decay", "inf"], "must be a finite number, 0 or more"),
        (["--lr-warmup-decay", "2"], "must be above 0 and at most 1, got 2"),
        (["--seed", "-1"], "--seed: must be a whole number from 0 to 4294967295, got -1"),
        (["--seed", str(2**64)], "--seed: must be a whole number from 0 to 4294967295"),
        (["--experiment", " "], "--experiment: must not be empty"),
    ],
)
def test_bad_flags_are_an_argparse_error(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        get_args_parser().parse_args(["--data-dir", "d", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_defaults_are_the_fast_cpu_recipe():
    args = get_args_parser().parse_args([])
    assert (args.model, args.optimizer, args.lr_schedule, args.augmentation) == (
        "smallcnn",
        "adamw",
        "cosine",
        "cutmix",
    )
    assert args.device == "auto" and args.resume is None and args.per_sample_mix
    # Every image mixed: chosen on leak-free cross-validated folds (docs/model-quality.md).
    assert args.cutmix_prob == 1.0


def test_interruption_flag_is_hidden_from_help():
    assert "max-epochs-this-session" not in get_args_parser().format_help()


def test_help_shows_defaults_only_where_they_say_something():
    text = " ".join(get_args_parser().format_help().split())
    assert "no progress bars (default: True)" not in text  # read as the switch's own effect
    assert "(default: None)" not in text
    assert "--momentum MOMENTUM SGD only (default: 0.9)" in text


# A new option is written in several places (architecture.md, "where a change goes"); these two
# tests name the places a forgotten one breaks silently.
# Options that are no training param of their own: the data's (trainer/mlflow_run.py logs what
# they made: class names, image size, groups per split, the operating point) and where the run
# goes.
NOT_PARAMS = {"data_dir", "class_names", "image_size", "groups_file", "positive_class",
              "experiment", "run_name", "tracking_uri", "checkpoint_dir", "from_run"}  # fmt: skip
# The options of the first checkpoints: a resume of one finds all of these in it.
FIRST_CHECKPOINTED = {
    "model", "epochs", "batch_size", "optimizer", "lr", "lr_schedule", "lr_warmup_epochs",
    "lr_warmup_decay", "lr_step_size", "lr_gamma", "weight_decay", "momentum", "augmentation",
    "cutmix_alpha", "cutmix_prob", "mixup_alpha", "per_sample_mix", "flip", "dropout",
    "label_smoothing", "val_fraction", "patience", "seed", "data_dir", "image_size",
    "experiment", "run_name", "tracking_uri", "checkpoint_dir",
}  # fmt: skip


def _options() -> set[str]:
    return {a.dest for a in get_args_parser()._actions if a.dest != "help"}


def test_every_training_option_is_logged_as_a_param_or_named_as_none():
    from runs import contract
    from trainer.resume import RUNTIME_ARGS

    unlogged = _options() - set(contract.TRAINING_PARAMS) - set(RUNTIME_ARGS) - NOT_PARAMS
    assert not unlogged, (
        f"{sorted(unlogged)}: add to runs.contract.TRAINING_PARAMS (a run's param, shown on "
        "the model card), or to NOT_PARAMS here when the data's params say what it made"
    )


def test_every_option_added_since_the_first_checkpoints_has_their_value():
    from trainer.resume import NEW_ARG_DEFAULTS, RUNTIME_ARGS

    new = _options() - set(RUNTIME_ARGS) - FIRST_CHECKPOINTED
    missing = new - set(NEW_ARG_DEFAULTS)
    assert not missing, (
        f"{sorted(missing)}: a resumed older checkpoint has no value for it; add the value that "
        "reproduces how such runs trained to NEW_ARG_DEFAULTS in trainer/resume.py"
    )


@pytest.mark.parametrize(
    ("argv", "given"),
    [
        (["--epochs=5"], {"epochs"}),
        (["--epoch", "5"], {"epochs"}),  # an abbreviation argparse accepts
        (["--no-per-sample-mix"], {"per_sample_mix"}),
        (["--per-sample-mix"], {"per_sample_mix"}),
        (["--no-progress", "--device=cpu", "--resume=auto"], {"progress", "device", "resume"}),
        (["--epochs", "80"], {"epochs"}),  # the default, given: a choice
        ([], set()),
    ],
)
def test_the_options_a_command_gives_itself_are_told_from_defaults(argv, given):
    from trainer.resume import given_options

    assert given_options(["--data-dir", "d", *argv]) == {"data_dir", *given}
