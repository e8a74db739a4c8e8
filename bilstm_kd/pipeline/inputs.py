"""The inputs every stage reads: the data, the student's vocabulary and initial word vectors (cheap: prepared on
every run, before the stages), and the fingerprints that tie the stages' results to them."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any

from bilstm_kd import cache
from bilstm_kd.config import RunConfig
from bilstm_kd.data.readers import Examples, load_split
from bilstm_kd.data.statistics import statistics
from bilstm_kd.text.embeddings import EmbeddingMatrix, VectorsSource, build_vocabulary, cached_embeddings
from bilstm_kd.text.vocab import Vocabulary

if TYPE_CHECKING:
    from bilstm_kd.pipeline.context import Run


@dataclasses.dataclass(frozen=True)
class RunInputs:
    """What `prepare_inputs` found.

    Args:
        train: the training split.
        dev: each dev split by name.
        vocabulary: the student's vocabulary.
        embeddings: the student's initial word vectors.
        data_fingerprint: the hash of every split's texts and labels.
        student_inputs_fingerprint: the hash of the data, the vocabulary and the word vectors.
        statistics: what `data_stats.json` holds.
    """

    train: Examples
    dev: dict[str, Examples]
    vocabulary: Vocabulary
    embeddings: EmbeddingMatrix
    data_fingerprint: str
    student_inputs_fingerprint: str
    statistics: dict[str, Any]


def vectors_sources(config: RunConfig) -> tuple[VectorsSource, VectorsSource]:
    """The student's word vectors (`--embeddings`), and where `--vocab_from_vectors` takes its words from."""
    student = config.student
    vectors = VectorsSource(
        student.embeddings, student.embeddings_format, student.embedding_dim, config.teacher.teacher
    )
    if not student.vocab_source or student.vocab_source == student.embeddings:
        return vectors, vectors
    return vectors, dataclasses.replace(vectors, name=student.vocab_source, file_format="auto")


def prepare_inputs(run: Run) -> RunInputs:
    """Loads the data, builds the student's vocabulary (saved to `student/vocab.txt`) and word vectors
    (cached in `student/embeddings.npz`) and writes `data_stats.json`."""
    started = time.perf_counter()
    config, task, paths = run.config, run.task, run.paths
    data = config.data
    splits = {
        split: load_split(task, split, data.data_source, data.data_dir, data.tfds_data_dir, data.train_limit)
        for split in ("train", *task.dev_splits)
    }
    train = splits.pop("train")
    vectors, vocabulary_vectors = vectors_sources(config)
    student = config.student
    vocabulary = build_vocabulary(
        (text for column in train.texts for text in column),
        student.vocab_min_count,
        student.vocab_max_size,
        student.vocab_from_vectors,
        vocabulary_vectors,
    )
    if run.chief:
        os.makedirs(os.path.dirname(paths.vocabulary), exist_ok=True)
        vocabulary.save(paths.vocabulary)
    embeddings = cached_embeddings(paths.embeddings, vectors, vocabulary, seed=config.seed, write=run.chief)
    dev_fingerprints = {split: cache.examples_fingerprint(examples) for split, examples in splits.items()}
    data_fingerprint = cache.fingerprint({"train": cache.examples_fingerprint(train), "dev": dev_fingerprints})
    student_inputs_fingerprint = cache.fingerprint(
        {"data": data_fingerprint, "vocabulary": list(vocabulary.tokens), "embeddings": embeddings.summary()}
    )
    stats = {
        "task": task.name,
        "source": data.data_source,
        "splits": {"train": statistics(train, task, vocabulary.tokens)}
        | {split: statistics(examples, task, vocabulary.tokens) for split, examples in splits.items()},
        "vocabulary_size": len(vocabulary),
        "embeddings": embeddings.summary(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if run.chief:
        cache.write_json(os.path.join(config.workdir, "data_stats.json"), stats)
    return RunInputs(train, splits, vocabulary, embeddings, data_fingerprint, student_inputs_fingerprint, stats)
