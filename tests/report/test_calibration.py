"""Expected calibration error and the reliability bins, on examples small enough to compute by hand."""

import numpy as np
import pytest

from bilstm_kd.report.calibration import calibration_lines, reliability

# Top-class probability and whether it is right: 0.95 right (bin 9), 0.85 wrong (bin 8), 0.65 right and 0.60
# wrong (both bin 6).
PROBABILITIES = np.array([[0.95, 0.05], [0.85, 0.15], [0.35, 0.65], [0.60, 0.40]])
LABELS = np.array([0, 1, 1, 1])


def test_ece_by_hand():
    result = reliability(PROBABILITIES, LABELS)
    # bin 9: 1/4 * |1 - 0.95|; bin 8: 1/4 * |0 - 0.85|; bin 6: 2/4 * |0.5 - 0.625|
    assert result["ece"] == pytest.approx(0.25 * 0.05 + 0.25 * 0.85 + 0.5 * 0.125)  # 0.2875
    assert result["accuracy"] == 0.5 and result["confidence"] == pytest.approx((0.95 + 0.85 + 0.65 + 0.60) / 4)
    bins = result["bins"]
    assert len(bins) == 10 and (bins[6]["lower"], bins[6]["upper"]) == (0.6, 0.7)
    assert [row["examples"] for row in bins] == [0, 0, 0, 0, 0, 0, 2, 0, 1, 1]
    assert bins[6]["accuracy"] == 0.5 and bins[6]["confidence"] == pytest.approx(0.625)
    assert "accuracy" not in bins[0]  # an empty bin has no mean


def test_certainty_falls_in_the_last_bin_and_a_right_certain_model_is_calibrated():
    result = reliability(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))
    assert result["ece"] == 0.0 and result["bins"][-1]["examples"] == 2


def test_fewer_bins():
    # Two bins: [0, 0.5) is empty, [0.5, 1] holds all four: |0.5 - 0.7625|.
    assert reliability(PROBABILITIES, LABELS, bins=2)["ece"] == pytest.approx(0.2625)


@pytest.mark.parametrize(
    "probabilities, labels, bins, message",
    [
        (PROBABILITIES, LABELS[:3], 10, "as many labels"),
        (np.zeros((0, 2)), np.zeros(0), 10, "at least one"),
        (PROBABILITIES, LABELS, 0, "bins must be 1 or more, received 0"),
    ],
)
def test_bad_inputs(probabilities, labels, bins, message):
    with pytest.raises(ValueError, match=message):
        reliability(probabilities, labels, bins)


def test_the_section_names_the_bins_and_which_way_each_model_leans():
    calibration = {
        "split": "dev",
        "models": {
            "student": reliability(PROBABILITIES, LABELS),
            "teacher": reliability(np.array([[0.6, 0.4], [0.4, 0.6]]), np.array([0, 0])),
        },
    }
    text = "\n".join(calibration_lines(calibration, "report_calibration.png"))
    assert "## Calibration: dev" in text and "10 equal-width bins" in text and "report_calibration.png" in text
    assert "| distilled BiLSTM | 28.8 | 76.2 | 50.0 | overconfident |" in text
    assert "| BERT teacher | 10.0 | 60.0 | 50.0 | overconfident |" in text
