"""The predictor's check that a version's weights are the ones chosen (``runs.digest``).

``dashboard.choose`` tags each version with its weights' digest (``weights_digest``), checked
against the run's when chosen; the trainer records it as the run's param. A version whose
loaded weights differ (its files replaced in the artifact store, or another model logged into
its run) is not served: the predictor keeps what it serves, and ``/ready`` says why.
"""

from collections.abc import Mapping

from common import InvalidInput
from runs import DIGEST_KEY, digest_differs, recorded_digest, weights_digest

RETRY_S = 600.0
"""How long a version refused for its weights, or that failed to load for another lasting
reason, is not downloaded again (its files may be restored meanwhile; a new tag is tried at
once): a large model is not fetched at every poll."""


class WeightsRefused(InvalidInput):
    """The version's loaded weights are not those recorded."""


def check_weights(classifier, version: str, run_id: str | None, tags: Mapping[str, str] | None,
                  params: Mapping[str, str] | None) -> None:  # fmt: skip
    """Refuse ``classifier``, loaded as ``version``, unless its weights' digest is both the
    version's tag ``weights_digest`` and its run's param (``params``; write-once, so a tag edited
    to match replaced files does not pass); what is not recorded (versions and runs from before
    the digest, a run gone) is not checked, and a version recording neither is served unchecked.

    Raises:
        WeightsRefused: Other weights than those recorded.
    """
    recorded = [
        (recorded_digest(tags), f"its tag {DIGEST_KEY}"),
        (recorded_digest(params), f"param {DIGEST_KEY} of run {run_id}"),
    ]
    if not any(digest for digest, _ in recorded):
        return
    actual = weights_digest(classifier)
    for digest, where in recorded:
        if problem := digest_differs(actual, digest):
            raise WeightsRefused(
                f"version {version} does not hold the weights chosen: {problem} ({where}); its "
                "model's files were changed in the artifact store (or another model was logged "
                "into its run) since: restore them, or choose a run again"
            )
