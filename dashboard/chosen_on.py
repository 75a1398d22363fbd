"""The evaluation a registered version was chosen on, as the version's tags record it
(``dashboard.choose`` writes them: ``handoff.caveats_of`` and the ``eval_*`` figures), against
the run's current evaluation (its ``pipeline.evaluation.path`` tag, ``contract.evaluation_dir``).

A later evaluation of the run (another data folder, say) replaces the figures every view of the
run shows, while the version keeps those it was chosen on: the one rule ``since_chosen`` says
so wherever a version of the run is shown (the Choose model tab, the model card, the
leaderboard's chosen mark), with the figures it was chosen on."""

from collections.abc import Mapping
from dataclasses import dataclass

from mlflow.exceptions import MlflowException

from common import PipelineError, metric_keys
from dashboard.markup import code, plain
from runs import contract, get_client

HEADLINE = ("roc_auc_macro", "accuracy")
"""The figures the chosen-on evaluation is named by (``metric_keys.summary`` of its tags)."""


@dataclass(frozen=True)
class ChosenOn:
    """What a version's tags record of the evaluation it was chosen on."""

    label: str
    """``classifier version 1 (alias champion)``: the version, as a person names it."""
    evaluated: bool
    """The run had an evaluation when chosen (the ``evaluated`` tag)."""
    path: str | None = None
    """Its folder (``evaluation_path``); None: not recorded (a choice before the tag)."""
    n_samples: str | None = None
    data_dir: str | None = None
    created_at: str | None = None
    tta: str | None = None
    headline: str = ""
    """``roc_auc_macro 0.884 [0.830, 0.930]; accuracy ...`` from the version's ``eval_*`` tags."""
    dataset_hash: str | None = None
    """The content hash of the test images it was measured on (``evaluation_dataset_hash``)."""

    def same_images(self, tags: Mapping[str, str]) -> bool:
        """Whether the run's current evaluation (its ``tags``) measured the very test images, with
        the same test-time augmentation, as the one this version was chosen on: the same model on
        them gives the same figures, in another folder (evaluated again, by a repeated request
        after one of other data, say)."""
        basis = contract.basis_tags(tags)
        return bool(self.dataset_hash) and (
            basis.get(contract.EVALUATION_DATA_TAG) == self.dataset_hash
            and basis.get(contract.EVALUATION_TTA_TAG, "none") == (self.tta or "none")
        )

    @classmethod
    def of(cls, label: str, tags: Mapping[str, str]) -> "ChosenOn | None":
        """The record in a version's ``tags``; None for a version no choice tagged (registered
        or tagged by hand: nothing is known of what it was chosen on)."""
        if tags.get("evaluated") not in ("true", "false"):
            return None
        figures = metric_keys.eval_figures(tags)
        parts = (metric_keys.summary(figures, name) for name in HEADLINE)
        return cls(
            label,
            tags["evaluated"] == "true",
            tags.get("evaluation_path"),
            tags.get("evaluation_n_samples"),
            tags.get("evaluation_data_dir"),
            tags.get("evaluation_created_at"),
            tags.get("evaluation_tta"),
            "; ".join(p for p in parts if p),
            tags.get("evaluation_dataset_hash"),
        )

    def figures(self) -> str:
        """Markdown: the chosen-on evaluation's folder, images, data, date, TTA and headline."""
        what = [f"{self.n_samples} test images" if self.n_samples else "test images"]
        if self.data_dir:
            what[0] += f" of {code(self.data_dir)}"
        if self.created_at:
            what.append(f"made {plain(self.created_at)}")
        if self.tta and self.tta != "none":
            what.append(f"tta {plain(self.tta)}")
        if self.headline:
            what.append(plain(self.headline))
        return f"{code(self.path or '')} ({', '.join(what)})"


def version_label(model: str, version: str, alias: str | None) -> str:
    """``classifier version 1 (alias champion)``: ``ChosenOn.label``."""
    return f"{model} version {version}" + (f" (alias {alias})" if alias else "")


def read_chosen_on(uri: str, model: str, version: str, alias: str | None) -> ChosenOn | None:
    """``ChosenOn`` of ``model`` ``version`` (``alias``: the alias that names it, for its
    label); None when the version's tags record no choice or cannot be read (then nothing is
    said of it, as of a version registered by hand)."""
    try:
        tags = get_client(uri).get_model_version(model, version).tags or {}
    except (MlflowException, PipelineError):
        return None
    return ChosenOn.of(version_label(model, version, alias), tags)


def since_chosen(chosen: ChosenOn | None, tags: Mapping[str, str]) -> str | None:
    """Markdown, one sentence: the run (its ``tags``) has been evaluated
    since ``chosen`` was chosen, so the figures shown are not those the version was chosen on,
    and which those were. None when they are the same evaluation, or when it is not known
    (no record, or one made before choices named the evaluation's folder)."""
    if chosen is None or (chosen.evaluated and not chosen.path):
        return None
    current = contract.evaluation_dir(tags) if contract.is_evaluated(tags) else None
    recorded = chosen.path if chosen.evaluated else None
    if recorded == current or (recorded and current and chosen.same_images(tags)):
        return None
    label = plain(chosen.label)
    if recorded is None:
        return (
            f"{label} was chosen without an evaluation: the test figures shown are of the "
            f"evaluation {code(current)}, made since, which nobody weighed when choosing it."
        )
    now = (
        f"the test figures shown are of the evaluation {code(current)}, made since"
        if current
        else "the run shows no evaluation now"
    )
    return (
        f"{label} was chosen on another evaluation than the one shown: on {chosen.figures()}; "
        f"{now}. Its choice (reason, figures, caveats) stands on the former; choose the run "
        "again to stand on the evaluation shown."
    )


CHOSEN_ELSEWHERE = "on other figures"
"""The leaderboard's chosen mark of a version chosen on another evaluation than the run's."""


def chosen_mark(version: str, differs: bool) -> str:
    """The leaderboard's ``servable`` cell of the run the alias names: ``✓ chosen (version 1)``,
    and ``on other figures`` when ``since_chosen`` has something to say (the table's notes say
    what)."""
    return f"✓ chosen (version {version})" + (f" {CHOSEN_ELSEWHERE}" if differs else "")


def card_lines(chosen: ChosenOn | None, tags: Mapping[str, str]) -> list[str]:
    """The model card's Markdown bullets on whether its test figures are those the version of
    the run that the alias names was chosen on (``since_chosen``); none when no such version,
    or nothing is known of what it was chosen on."""
    if chosen is None:
        return []
    if since := since_chosen(chosen, tags):
        return [f"- **Not the evaluation it was chosen on**: {since}"]
    if chosen.evaluated and chosen.path:
        if chosen.path != contract.evaluation_dir(tags):  # the same images, evaluated again
            return [
                f"- {plain(chosen.label)} was chosen on an evaluation of the same test images "
                f"({code(chosen.path)}), made again since as this one."
            ]
        return [f"- {plain(chosen.label)} was chosen on this evaluation."]
    return []
