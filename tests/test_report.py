"""The report's schema, its markdown table and its plot."""

import json
import pathlib

import pytest

from bilstm_kd.report import render_markdown, validate_report, write_report


def example_report():
    history = {"loss": [1.0, 0.5], "accuracy": [0.7, 0.8], "val_accuracy": [0.75, 0.85]}
    return {
        "task": "sst2",
        "metrics": ["accuracy"],
        "models": {
            "teacher": {
                "dev": {"dev": {"accuracy": 0.9}},
                "parameters": {"embedding": 100, "non_embedding": 2_000_000},
                "file_bytes": 90_000_000,
                "throughput": {"batch_512": 50.0, "batch_1": 20.0},
            },
            "student": {
                "dev": {"dev": {"accuracy": 0.87}},
                "parameters": {"embedding": 50, "non_embedding": 961_802},
                "throughput": {"batch_512": 5000.0, "batch_1": 900.0},
                "history": history,
            },
            "student_tflite": {
                "dev": {"dev": {"accuracy": 0.8712}},
                "verification": {"max_abs_diff": 3e-7, "label_agreement": 1.0},
            },
        },
        "speedup": {"batch_512": 100.0},
        "transfer_set": {"originals": 10, "augmented": 80},
        "stages": {"teacher": {"status": "ran", "seconds": 12.5}, "report": {"status": "ran", "seconds": 0.1}},
    }


def test_write_report_files(tmp_path):
    paths = write_report(example_report(), str(tmp_path))
    written = json.loads(pathlib.Path(paths["json"]).read_text())
    assert written["version"] == 1 and written["models"]["student"]["dev"]["dev"]["accuracy"] == 0.87
    markdown = pathlib.Path(paths["md"]).read_text()
    assert "| distilled BiLSTM | 87.0 | 961,802 | 50 | - | 5,000.0 | 900.0 |" in markdown
    assert "| BERT teacher | 90.0 | 2,000,000 | 100 | 90.00 | 50.0 | 20.0 |" in markdown
    assert "predicted labels agree on 100.00%" in markdown
    assert pathlib.Path(paths["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda report: report.pop("stages"), "lacks 'stages'"),
        (lambda report: report["models"].update(oracle={"dev": {}}), "unknown model 'oracle'"),
        (lambda report: report["models"]["student"]["dev"]["dev"].pop("accuracy"), "lacks metrics"),
    ],
)
def test_schema_errors(change, message):
    report = {"version": 1, **example_report()}
    change(report)
    with pytest.raises(ValueError, match=message):
        validate_report(report)


def test_markdown_for_pair_tasks_with_two_dev_sets():
    report = example_report()
    report["metrics"] = ["accuracy"]
    report["models"] = {"student": {"dev": {"dev_matched": {"accuracy": 0.7}, "dev_mismatched": {"accuracy": 0.69}}}}
    markdown = render_markdown(report)
    assert "dev_matched accuracy (%) | dev_mismatched accuracy (%)" in markdown
    assert "| 70.0 | 69.0 |" in markdown
