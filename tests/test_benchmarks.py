"""The benchmark scripts stay importable as the package changes (they run for minutes, so tests do not run them),
and the accelerator benchmark, meant to be run on the first GPU lent, works in its quick form on the CPU."""

import importlib.util
import json
import pathlib
import sys

import pytest

BENCHMARKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def load_benchmark(path):
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.name)
def test_benchmark_imports_and_has_a_main(path):
    module = load_benchmark(path)  # every name it imports from bilstm_kd still exists
    assert callable(module.main) and module.__doc__


def test_accelerator_benchmark_quick_prints_every_figure(monkeypatch, capsys, tmp_path):
    accelerator = load_benchmark(pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "accelerator.py")
    monkeypatch.setattr(sys, "argv", ["accelerator.py", "--quick", "--data_dir", str(tmp_path)])  # the demo corpus
    accelerator.main()
    figures = json.loads(capsys.readouterr().out)
    assert figures["quick"] and figures["sentences"] == "demo corpus" and "cpu_threads" in figures["devices"]
    fine_tuning, labelling = figures["teacher_fine_tuning"], figures["teacher_labelling"]
    assert set(fine_tuning) == {"float32", "mixed", "mixed_xla"} == set(labelling) - {"sentences", "mean_word_pieces"}
    assert fine_tuning["mixed"]["policy"] == figures["mixed_policy"] != "float32" and fine_tuning["mixed_xla"]["xla"]
    assert fine_tuning["mixed"]["loss_scaled"] == (figures["mixed_policy"] == "mixed_float16")
    for setting in ("mixed", "mixed_xla"):
        assert 0 < labelling[setting]["max_logit_difference_vs_float32"] < 0.5
        assert 0.9 <= labelling[setting]["label_agreement_vs_float32"] <= 1.0
    assert all(fine_tuning[name]["examples_per_second"] > 0 for name in fine_tuning)
    assert figures["student_training"]["cudnn_vs_masked"] > 0
    inference = figures["inference"]
    assert {"student_cudnn", "student_masked", "student_exported", "bert_base_float32", "bert_large_float32"} <= set(
        inference
    )
    assert inference["speedups"]["student_vs_bert_large_float32_batch_512"] > 0


def tiny_teacher_and_rows(tmp_path, count=40):
    """A tiny BERT preset (random weights) in `tmp_path/teacher`, and `count` sentences of its vocabulary."""
    from conftest import VOCABULARY, tiny_bert_backbone, tiny_tokenizer

    preset = tmp_path / "teacher"
    tiny_bert_backbone(len(VOCABULARY), max_sequence_length=128).save_to_preset(str(preset))
    tiny_tokenizer().save_to_preset(str(preset))
    words = [word for word in VOCABULARY if word.isalpha()]
    rows = [" ".join(words[(row * 7 + step) % len(words)] for step in range(1 + row % 9)) for row in range(count)]
    return preset, rows


def run_labelling_speed(monkeypatch, capsys, *argv):
    """benchmarks/labelling_speed.py with these arguments; the JSON figures it prints."""
    labelling_speed = load_benchmark(pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "labelling_speed.py")
    monkeypatch.setattr(sys, "argv", ["labelling_speed.py", *argv])
    labelling_speed.main()
    return json.loads(capsys.readouterr().out)


def test_labelling_speed_compares_every_setting_with_the_plain_pass(monkeypatch, capsys, tmp_path):
    preset, rows = tiny_teacher_and_rows(tmp_path)
    (tmp_path / "train.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"{row}\t{i % 2}\n" for i, row in enumerate(rows))
    )
    figures = run_labelling_speed(
        monkeypatch,
        capsys,
        *("--teacher", str(preset), "--train_tsv", str(tmp_path / "train.tsv"), "--sample", "30"),
        *("--settings", "plain,float32_512,int8_1024,int8checked", "--check_margin", "0.1"),
        *("--dev_tsv", str(tmp_path / "train.tsv")),
    )
    assert figures["sentences"]["count"] == 30
    for name in ("float32_512", "int8_1024", "int8checked"):
        assert figures[name]["sentences_per_second"] > 0 and figures[name]["speedup_vs_plain"] > 0
        # This 8-wide teacher is below the converter's quantization threshold: every setting computes the same.
        assert (
            figures[name]["label_agreement_vs_plain"] == 1.0 and figures[name]["max_logit_difference_vs_plain"] < 1e-4
        )
    assert 0 <= figures["int8checked"]["relabelled_by_float32"] <= 30
    accuracies = {figures[name]["dev_accuracy"] for name in ("plain", "float32_512", "int8_1024", "int8checked")}
    assert len(accuracies) == 1 and 0 <= accuracies.pop() <= 1  # the same labels, scored on the 40 rows
    assert set(figures["int8_1024"]["if_checked"]) == {"0.25", "0.5", "1.0", "2.0"}


def test_labelling_speed_labels_the_pairs_of_a_transfer_set_of_pairs(monkeypatch, capsys, tmp_path):
    from bilstm_kd.teacher.inference import encode_texts
    from bilstm_kd.teacher.loading import load_teacher
    from bilstm_kd.transfer import records
    from bilstm_kd.transfer.shards import ShardedRecords

    preset, rows = tiny_teacher_and_rows(tmp_path, count=24)
    first, second = rows[:12], rows[12:]
    store = ShardedRecords(tmp_path / "augmented", {"seed": 0}, num_shards=2)
    for shard in range(2):
        pairs = range(shard, 12, 2)
        store.write_shard(shard, (records.encode_example([first[i], second[i]], i % 2) for i in pairs))
    store.finish({"examples": 12})
    figures = run_labelling_speed(
        monkeypatch,
        capsys,
        *("--teacher", str(preset), "--transfer_dir", str(tmp_path / "augmented")),
        *("--sample", "12", "--settings", "plain,int8checked"),
    )
    # Every pair was labelled as a pair: [CLS] a [SEP] b [SEP], as the pipeline packs it.
    teacher = load_teacher(str(preset), num_classes=2, pooling="mean")
    pair_lengths = encode_texts(teacher.preprocessor, first, second).lengths
    assert figures["sentences"]["count"] == 12
    assert figures["sentences"]["mean_word_pieces"] == pytest.approx(pair_lengths.mean())
    assert figures["int8checked"]["label_agreement_vs_plain"] == 1.0
