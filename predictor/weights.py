"""The predictor's check that a version's weights are the ones chosen (``runs.digest``).

``dashboard.choose`` tags each version with its weights' digest (``weights_digest``), checked
against the run's when chosen; the trainer records it as the run's param. A version whose
loaded weights differ (its files replaced in the artifact store, or another model logged into
its run) is not served: the predictor keeps what it serves, and ``/ready`` says why.
"""

from collections.abc import Mapping

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from common import InvalidInput, ServiceUnavailable
from runs import DIGEST_KEY, digest_differs, recorded_digest, weights_digest

RETRY_S = 600.0
"""How long a version refused for its weights is not downloaded again (its files may be restored
meanwhile; a new tag is tried at once): a large model is not fetched at every poll."""


class WeightsRefused(InvalidInput):
    """The version's loaded weights are not those recorded."""


def check_weights(classifier, version: str, run_id: str | None, tags: Mapping[str, str] | None,
                  tracking_uri: str) -> None:  # fmt: skip
    """Refuse ``classifier``, loaded as ``version``, unless its weights' digest is both the
    version's tag ``weights_digest`` and its run's param (write-once, so a tag edited to match
    replaced files does not pass); what is not recorded (versions and runs from before the
    digest) is not checked, and a version recording neither is served unchecked.

    Raises:
        WeightsRefused: Other weights than those recorded.
        ServiceUnavailable: MLflow failed to return the run's params.
    """
    recorded = [(recorded_digest(tags), f"its tag {DIGEST_KEY}")]
    if run_id:
        try:
            params = MlflowClient(tracking_uri).get_run(run_id).data.params
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                raise ServiceUnavailable(f"MLflow failed to return run {run_id}: {exc}") from exc
            params = {}  # the run is gone (``predictor.lifecycle`` says so): nothing recorded
        recorded.append((recorded_digest(params), f"param {DIGEST_KEY} of run {run_id}"))
    actual = weights_digest(classifier)
    for digest, where in recorded:
        if problem := digest_differs(actual, digest):
            raise WeightsRefused(
                f"version {version} does not hold the weights chosen: {problem} ({where}); its "
                "model's files were changed in the artifact store (or another model was logged "
                "into its run) since: restore them, or choose a run again"
            )
