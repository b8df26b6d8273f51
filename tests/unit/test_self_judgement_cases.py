"""``benchmarks/self_judgement.py``: its AUC and its cases (the model runs in the benchmark)."""

from __future__ import annotations

import pytest
from helpers import load_benchmark

judgement = load_benchmark("self_judgement")


def test_auc_is_the_share_of_positive_negative_pairs_ordered_right():
    assert judgement.auc([2.0, 3.0], [1.0]) == 1.0
    assert judgement.auc([1.0], [2.0, 3.0]) == 0.0
    assert judgement.auc([1.0, 3.0], [2.0]) == 0.5
    assert judgement.auc([1.0], [1.0]) == 0.5
    with pytest.raises(ValueError, match="positive and one negative"):
        judgement.auc([1.0], [])


@pytest.mark.parametrize("cases", [judgement.STEP_CASES, judgement.ANSWER_CASES])
def test_every_probe_has_right_and_wrong_cases_under_every_wording(cases):
    labels = [right for _, items in cases for _, right in items]
    assert any(labels) and not all(labels)
    for wordings in judgement.PROMPTS.values():
        for _, template in wordings:
            assert "{goal}" in template and "{text}" in template
