"""The teacher model: a `BertTeacher` (a keras-hub `BertBackbone` with a classifier head on the [CLS] pooler or
on the mean of the token vectors, and the keras-hub preprocessor that turns text into word pieces), an
ensemble of them (`TeacherEnsemble`), and their size (`teacher_size`).

`[MASK]` written into the transfer set by augmentation reaches BERT as its mask token: the tokenizer is built
with `special_tokens_in_strings=True`, and `[mask]` in any case is normalised to `[MASK]` first
(`inference.encode_texts`). (As with Hugging Face tokenizers, a literal "[CLS]", "[SEP]" or "[PAD]" in the
text also becomes that special token.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import keras_hub
import numpy as np

from bilstm_kd.distribute import strategies as distribute
from bilstm_kd.teacher import POOLINGS


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
        # float32 logits under mixed precision too (as Keras' mixed precision guide advises for the softmax).
        logits = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="logits",
            dtype="float32",
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

    @property
    def precision(self) -> str:
        """The backbone's dtype policy: `float32`, `mixed_float16` or `mixed_bfloat16` (see `precision`)."""
        return self.backbone.dtype_policy.name

    def with_precision(self, dtype_policy: str) -> BertTeacher:
        """An uncompiled copy with the same weights and preprocessor, its backbone computing in `dtype_policy`
        (a Keras policy name; the weights stay float32 under the mixed policies)."""
        config = {**self.backbone.get_config(), "dtype": dtype_policy}
        copy = BertTeacher(
            type(self.backbone).from_config(config),
            self.preprocessor,
            num_classes=self.num_classes,
            pooling=self.pooling,
            dropout=self.dropout,
            name=self.name,
        )
        copy.set_weights(self.get_weights())
        return copy

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

    @property
    def precision(self) -> str:
        return self.members[0].precision

    def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
        logits = [member(inputs, training=training) for member in self.members]
        return keras.ops.mean(keras.ops.stack(logits), axis=0)


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
