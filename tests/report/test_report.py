"""The report's schema, its markdown table, the files it lists and its plot."""

import json
import pathlib

import pytest

from bilstm_kd.report import figures
from bilstm_kd.report.report import data_file_title, render_markdown, summary, validate_report, write_report


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
        "speedup": {"batch_512": 100.0, "batch_1": 45.0},
        "transfer_set": {"originals": 10, "augmented": 80},
        "stages": {"teacher": {"status": "ran", "seconds": 12.5}, "report": {"status": "ran", "seconds": 0.1}},
    }


def model_table(markdown):
    """The report's model table as {model name: {column header: cell}}."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0]]
    table = {}
    for row in rows[1:]:
        cells = [cell.strip() for cell in row]
        if len(cells) != len(header):
            break  # the next table (stages)
        table[cells[0]] = dict(zip(header, cells))
    return table


def test_write_report_files(tmp_path):
    paths = write_report(example_report(), str(tmp_path))
    written = json.loads(pathlib.Path(paths["json"]).read_text())
    assert written["version"] == 1 and written["models"]["student"]["dev"]["dev"]["accuracy"] == 0.87
    markdown = pathlib.Path(paths["md"]).read_text()
    table = model_table(markdown)
    student, teacher = table["distilled BiLSTM"], table["BERT teacher"]
    assert student["dev accuracy (%)"] == "87.0" and teacher["dev accuracy (%)"] == "90.0"
    assert student["non-embedding params"] == "961,802" and student["embedding params"] == "50"
    assert teacher["non-embedding params"] == "2,000,000" and teacher["file MB"] == "90.00"
    assert student["file MB"] == "-"
    assert (student["examples/s (batch 512)"], student["examples/s (batch 1)"]) == ("5,000.0", "900.0")
    assert (teacher["examples/s (batch 512)"], teacher["examples/s (batch 1)"]) == ("50.0", "20.0")
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
    student = model_table(render_markdown(report))["distilled BiLSTM"]
    assert (student["dev_matched accuracy (%)"], student["dev_mismatched accuracy (%)"]) == ("70.0", "69.0")


def with_baseline(student_accuracy, tfidf_accuracy):
    report = example_report()
    report["models"]["student"]["test"] = {"test": {"accuracy": student_accuracy}}
    report["models"]["teacher"]["test"] = {"test": {"accuracy": 0.92}}
    report["models"]["tfidf"] = {
        "dev": {"dev": {"accuracy": 0.8}},
        "test": {"test": {"accuracy": tfidf_accuracy}},
        "train_seconds": 41.0,
        "file_bytes": 2_000_000,
        "throughput": {"batch_512": 9000.0, "batch_1": 1500.0},
    }
    report["models"]["student_tflite"]["file_bytes"] = 3_400_000
    return report


def test_the_opening_says_when_the_student_beats_the_linear_baseline():
    opening = summary(with_baseline(0.91, 0.88))
    assert opening[0] == "The distilled student scores 91.0% accuracy on test, 1.0 points under its teacher (92.0%)."
    assert (
        opening[1] == "It beats TF-IDF + logistic regression on the same split by 3.0 points (88.0%, fitted in 41 s)."
    )
    assert (
        opening[2] == "Its TFLite file is 3.4 MB; it answers one sentence in 1.11 ms on this machine, 45x its teacher."
    )
    markdown = render_markdown(with_baseline(0.91, 0.88))
    assert "It beats TF-IDF" in markdown.split("| model")[0]  # before the table
    assert model_table(markdown)["TF-IDF + logistic regression"]["test accuracy (%)"] == "88.0"


def test_the_opening_says_when_the_student_does_not_beat_it():
    opening = summary(with_baseline(0.907, 0.913))
    assert opening[1].startswith(
        "It does not beat TF-IDF + logistic regression on the same split (91.3%, fitted in 41 s,"
    )
    assert "0.6 points more" in opening[1]
    assert summary({"metrics": ["accuracy"], "models": {}}) == []


def test_the_speed_up_is_said_in_words():
    markdown = render_markdown(example_report())
    assert "Student speed-up over the teacher: batch of 512: 100.0x, batch of 1: 45.0x." in markdown
    assert "batch_512" not in markdown


@pytest.mark.parametrize(
    "path, title",
    [
        ("../shared/data/HWU64/train.csv", "HWU64/train.csv"),
        ("data/ho/train.csv", "ho/train.csv"),
        ("/home/me/my_intents.csv", "my_intents.csv"),
        ("tickets.jsonl", "tickets.jsonl"),
    ],
)
def test_a_file_task_is_titled_after_its_data_file(path, title):
    assert data_file_title(path) == title


def test_the_title_is_the_reports_or_else_the_task():
    report = example_report()
    assert render_markdown(report).startswith("# Distillation report: sst2\n")
    report["title"] = "HWU64/train.csv"
    assert render_markdown(report).startswith("# Distillation report: HWU64/train.csv\n")


def test_files_to_ship_with_their_sizes_and_why_one_is_missing():
    report = example_report()
    report["shipped"] = [
        {"file": "export/saved_model/", "takes": "text in", "bytes": 44_814_973},
        {"file": "export/student.tflite", "takes": "word ids in", "bytes": 20_857_304},
        {
            "file": "export/student_mediapipe.tflite",
            "takes": "text in",
            "skipped": "the MediaPipe file needs --tokenizer=regex",
        },
    ]
    lines = render_markdown(report).splitlines()
    files = lines[lines.index("## Files to ship") + 1 :]
    assert files[1:5] == [
        "| file | what it takes | MB |",
        "|---|---|---|",
        "| `export/saved_model/` | text in | 44.81 |",
        "| `export/student.tflite` | word ids in | 20.86 |",
    ]
    assert files[6] == "- No `export/student_mediapipe.tflite`: the MediaPipe file needs --tokenizer=regex."


def test_training_curves_in_words_one_colour_a_model_and_whole_epochs(monkeypatch, tmp_path):
    report = example_report()
    report["models"]["baseline"] = {
        "dev": {"dev": {"accuracy": 0.8}},
        "history": {"accuracy": [0.6, 0.7, 0.75], "val_accuracy": [0.65, 0.7, 0.72]},
    }
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda figure, path, dpi=110: drawn.setdefault("figure", figure))
    figures.plot(report, str(tmp_path / "report.png"))
    curves = drawn["figure"].axes[1]
    lines = {line.get_label(): line for line in curves.lines}
    assert set(lines) == {
        "distilled BiLSTM: dev accuracy",
        "distilled BiLSTM: training data accuracy",
        "BiLSTM, no teacher: dev accuracy",
        "BiLSTM, no teacher: training data accuracy",
    }
    for model in ("distilled BiLSTM", "BiLSTM, no teacher"):
        dev, training = lines[f"{model}: dev accuracy"], lines[f"{model}: training data accuracy"]
        assert dev.get_color() == training.get_color()
        assert (dev.get_linestyle(), training.get_linestyle()) == ("-", "--")
    assert lines["distilled BiLSTM: dev accuracy"].get_color() != lines["BiLSTM, no teacher: dev accuracy"].get_color()
    assert all(tick == int(tick) for tick in curves.get_xticks())
    assert curves.get_xlabel() == "epoch" and curves.get_ylabel() == "accuracy (%)"


def test_shipped_files_take_the_export_stages_sizes_and_reasons():
    from bilstm_kd.config import ExportConfig
    from bilstm_kd.pipeline.report_stage import shipped_files

    export = {
        "saved_model": {"path": "runs/x/export/saved_model", "bytes": 44_814_973, "verification": {}},
        "tflite": {"path": "runs/x/export/student.tflite", "bytes": 20_857_304, "verification": {}},
        "mediapipe": {"skipped": "the MediaPipe file needs --tokenizer=regex"},
    }
    shipped = shipped_files(export, ExportConfig())
    assert [(entry["file"], entry.get("bytes"), entry.get("skipped")) for entry in shipped] == [
        ("export/saved_model/", 44_814_973, None),
        ("export/student.tflite", 20_857_304, None),
        ("export/student_mediapipe.tflite", None, "the MediaPipe file needs --tokenizer=regex"),
    ]
    unchecked = {"mediapipe": {"bytes": 1_000, "verification": None}}
    shipped = shipped_files(unchecked, ExportConfig(export_saved_model=False))
    assert shipped[0]["skipped"] == "--noexport_saved_model"
    assert shipped[2] == {
        "file": "export/student_mediapipe.tflite",
        "takes": shipped[2]["takes"],
        "bytes": 1_000,
        "note": "the mediapipe runtime is not importable",
    }
    assert "add export to --stages" in shipped_files(None, ExportConfig())[1]["skipped"]
