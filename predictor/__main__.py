"""``python -m predictor FILE...``: predict image files with the chosen model, without a server.

Loads the version that ``models:/<MODEL_NAME>@<MODEL_ALIAS>`` names (as the service does, with its
operating point) and prints one line per file, or the service's JSON answer with ``--json``. Where
the service would serve the version recorded as served instead (the alias removed, or naming a
version that does not load or changes the interface unconfirmed), so does this, with a
``warning:`` line saying why.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from common import PipelineError, get_settings
from predictor.answers import predict
from predictor.core import ModelHolder
from predictor.inputs import MAX_FILES


def _line(p: dict) -> str:
    """``FILE: CLASS (probabilities)``; with a threshold, CLASS is the served ``decision`` and
    the most probable class (argmax) follows it; the image's ``input_note`` (colour read as
    grey) in brackets at the end."""
    probs = p["probabilities"]
    ranked = ", ".join(f"{c} {v:.3f}" for c, v in sorted(probs.items(), key=lambda kv: -kv[1]))
    unlike = ""
    if p.get("out_of_distribution"):  # first: a reader must not act on the class that follows
        unlike = (
            f"OUT OF DISTRIBUTION (ood_score {p['ood_score']:.2f} > 1: unlike the training "
            "images; do not rely on this answer) "
        )
    note = f" [{p['input_note']}]" if p.get("input_note") else ""
    if p["decision"] is None:
        return f"{p['file']}: {unlike}{p['predicted_class']} ({ranked}){note}"
    by = f"by the threshold; argmax {p['predicted_class']}; {ranked}"
    return f"{p['file']}: {unlike}{p['decision']} ({by}){note}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m predictor",
        description="Predict PNG, JPEG or DICOM files with the model the registry alias names "
        "(the predictor service's answer, without the service). Serve it over HTTP with "
        "`uvicorn predictor.app:app --http service.protocol:BoundedHead --port 5007`.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="image files")
    parser.add_argument("--json", action="store_true", help="print the service's JSON answer")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        uploads = [(str(path), path.read_bytes()) for path in args.files]
    except OSError as exc:
        print(f"error: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    holder = ModelHolder(settings, record=False)  # a one-off answer is not "served"
    log = logging.getLogger("predictor")
    # Its warnings would repeat the one line this command prints on failure.
    log.disabled, was = True, log.disabled
    try:
        holder.refresh()
    finally:
        log.disabled = was
    try:
        served = holder.serving()
        # A request holds at most MAX_FILES images; the answers of each part are joined. The
        # service's limit of a request's pixels guards it against its clients, not this command
        # against its user's own files (each image is decoded and resized in turn).
        parts = [uploads[i : i + MAX_FILES] for i in range(0, len(uploads), MAX_FILES)]
        answers = [predict(served, part, max_pixels=None) for part in parts]
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # the service's JSON answer, the predictions of every part in one list
    answer = answers[0].model_dump(mode="json")
    answer["predictions"] = [p.model_dump(mode="json") for a in answers for p in a.predictions]
    point = answer["operating_point"]
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    rule = f", decision: {point['positive_class']} when its probability >= " \
        f"{point['threshold']:.4g}" if point else ""  # fmt: skip
    print(f"{answer['model_name']} version {answer['version']} (run {answer['run_id']}{rule})")
    if answer.get("ood_check") is None:
        print("note: this model carries no out-of-distribution check: nothing flags images "
              "unlike its training images", file=sys.stderr)  # fmt: skip
    if answer["problem"]:
        print(f"warning: {answer['problem']}", file=sys.stderr)
    for p in answer["predictions"]:
        print(_line(p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
