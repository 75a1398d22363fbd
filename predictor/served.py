"""One loaded version of the registered model (``Served``): what the predictor answers with, and
what its clients depend on (``Served.interface``)."""

from dataclasses import dataclass
from datetime import datetime

from runs import Interface, OperatingPoint, dicom_inputs


@dataclass(frozen=True)
class Served:
    """One loaded version of the registered model, and how it stands against the alias.

    ``stale``: the alias is known to no longer name this version (it was removed, or moved to a
    version that cannot be served); ``problem`` says why, or what kept the last check from
    telling (MLflow down); None while the alias names this version. ``run_problem``: what is
    wrong with the version's run whatever the alias names (deleted: ``predictor.lifecycle``);
    answers give both as one ``problem`` (``predictor.answers``).
    """

    model_name: str
    alias: str
    version: str
    run_id: str | None
    # mlpipeline_model.ImageClassifierModel: this process's copy of the code, which may be newer
    # than the model's (``decoding_note``)
    classifier: object
    loaded_at: datetime
    operating_point: OperatingPoint | None = None
    stale: bool = False
    problem: str | None = None
    run_problem: str | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.classifier.class_names)

    @property
    def interface(self) -> Interface:
        """What its clients depend on (``runs.Interface``)."""
        c, point = self.classifier, self.operating_point
        positive = point.positive_class if point is not None else None
        checked = getattr(c, "guards_dicom", False)
        takes, frames = dicom_inputs(checked, getattr(c, "modalities", None),
                                     c.__dict__.get("multi_frame"))  # fmt: skip
        # the check its answers apply (null ood_score without it), as /ready's ood_check says
        ood = getattr(c, "ood_check", None) is not None
        return Interface.of(c.class_names, c.channels, c.image_size, positive, takes, frames, ood)
