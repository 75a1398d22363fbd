"""``python -m dataloader synth|import-medmnist|stats|locate``: errors are one line on stderr,
exit 2."""

import argparse
import json
import os
import sys
from pathlib import Path

from common import PipelineError, StartupError
from dataloader.dataset import load_dataset
from dataloader.locate import locate
from dataloader.medmnist import import_medmnist
from dataloader.scan import present_splits
from dataloader.synth import synthesize


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dataloader", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write the synthetic skin-lesion demo dataset")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--train-per-class", type=int, default=200, metavar="N")
    synth.add_argument("--test-per-class", type=int, default=50, metavar="N")
    synth.add_argument("--size", type=int, default=64, metavar="PX", help="width = height")
    synth.add_argument("--seed", type=int, default=0, metavar="S")

    medmnist = sub.add_parser("import-medmnist", help="write a MedMNIST .npz as image folders")
    medmnist.add_argument("npz", type=Path, metavar="FILE.npz")
    medmnist.add_argument("--out", type=Path, required=True, help="output folder")
    medmnist.add_argument(
        "--keep-val", action="store_true", help="write val/ instead of merging val into train/"
    )
    medmnist.add_argument(
        "--class-names", help="comma-separated folder names for labels 0, 1, ... (default: 0, 1)"
    )

    stats = sub.add_parser("stats", help="print the dataset statistics as JSON")
    stats.add_argument("path", type=Path, metavar="DIR", help="image folder or MedMNIST .npz")
    stats.add_argument("--image-size", type=int, metavar="N", help="resize to N×N first")
    stats.add_argument(
        "--max-image-size",
        type=int,
        default=224,
        metavar="N",
        help="without --image-size, scale images whose longer side is larger down to N, aspect "
        "kept, as the trainer does by default (0: native size) (default: 224)",
    )
    stats.add_argument("--channels", type=int, choices=(1, 3), help="convert to 1 or 3 channels")

    find = sub.add_parser(
        "locate",
        help="print the file of DIR that each pseudonym names (results made with "
        "FILE_NAMES=pseudonyms; needs the services' PSEUDONYM_KEY)",
    )
    find.add_argument("path", type=Path, metavar="DIR", help="the data folder")
    find.add_argument(
        "pseudonyms", nargs="+", metavar="NAME", help="e.g. test/benign/~3f9a2c1e07b4.dcm"
    )
    return parser


def _stats(args: argparse.Namespace) -> dict:
    splits = ("train", "val", "test")
    if args.path.is_dir() and present_splits(args.path):
        splits = tuple(present_splits(args.path))
    ds = load_dataset(
        args.path, image_size=args.image_size, channels=args.channels, val_fraction=0.0,
        splits=splits, allow_group_overlap=True,  # report overlaps, do not refuse
        max_image_size=args.max_image_size,
    )  # fmt: skip
    return ds.stats


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "synth":
            out = synthesize(
                args.out, args.train_per_class, args.test_per_class, args.size, args.seed
            )
            print(f"wrote the demo dataset to {out}")
        elif args.command == "import-medmnist":
            names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
            counts = import_medmnist(args.npz, args.out, keep_val=args.keep_val, class_names=names)
            print(f"wrote {json.dumps(counts)} images to {args.out}")
        elif args.command == "locate":
            found = locate(args.path, args.pseudonyms)
            for name, files in found.items():
                print(f"{name}\t{', '.join(files) or 'no file of this folder (another key?)'}")
            return 0 if all(found.values()) else 1
        else:
            print(json.dumps(_stats(args), indent=2))
    except (PipelineError, StartupError) as exc:  # bad settings too: 1 is locate's "not found"
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
