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
        (["--min-image-size", "-1"], "0 or more"),
        (["--class-names", "malignant"], "must name every class"),
        (["--class-names", "a,,b"], "must name every class"),
        (["--class-names", "a,b,a"], "names a class twice"),
        (["--class-names", "a,../b"], "cannot be a class (folder) name"),
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
