"""The note under the leaderboard and the Compare table about runs whose test splits share the
very same images with their training data (one data set's copies across its splits)."""

from dashboard import leaderboard
from dashboard.leakage import LEAK
from dashboard.notes import notes
from tests.dashboard.test_leaderboard import _evaluated


def test_the_note_on_alike_runs_says_what_their_test_split_shares(leakage_tags):
    rows = [_evaluated("first", 0.8), _evaluated("second", 0.9)]
    for row in rows:
        row["tags"].update(leakage_tags["test"])  # a test image copied into train
    [said] = [n for n in notes([leaderboard.basis_of(r) for r in rows]) if n.startswith(LEAK)]
    assert said.startswith(
        f"{LEAK} 2 run(s) here were tested on a split that shares images (exact or near "
        "duplicates) or patients with their training or validation data (test split overlaps "
        "train/val: "
    ), said
    assert "the very same overlap as every other run on their test data" in said
    assert "optimistic, alike, so they rank among themselves" in said
