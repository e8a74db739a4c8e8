"""The BiLSTM students of Tang et al. (2019): one sentence, and a siamese encoder for sentence pairs.

Both students read padded word ids (0 = padding, right-padded as `text.vocab.WordTokenizer` produces them)
and return logits. Their encoder is `layers.MaskedBiLSTM`, their word vectors `layers.StudentEmbedding`.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from bilstm_kd.data.tasks import Task
from bilstm_kd.student.layers import MaskedBiLSTM, StudentEmbedding, check_dropout, check_positive_int


class _Student(keras.Model):
    """What both students share: config round trips, pretrained vectors, a padding mask."""

    def set_embedding_weights(self, matrix: np.ndarray) -> None:
        """Starts the word vectors from `matrix` (`[vocabulary_size, embedding_dim]`); see `StudentEmbedding`."""
        self.embedding.set_embedding_weights(matrix)

    def classify(self, encodings):
        """Logits from the sentence encodings (one per input); the students define it."""
        raise NotImplementedError

    def _encode(self, token_ids):
        vectors = self.embedding(token_ids)
        return self.encoder(vectors, mask=keras.ops.not_equal(token_ids, 0))

    def get_config(self):
        return {
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "num_classes": self.num_classes,
            "lstm_units": self.lstm_units,
            "hidden_units": self.hidden_units,
            "multichannel": self.multichannel,
            "dropout": self.dropout,
            "lstm_kernel": self.encoder.lstm_kernel,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_student_arguments(num_classes: int, lstm_units: int, hidden_units: int, dropout: float) -> None:
    check_positive_int("lstm_units", lstm_units)
    check_positive_int("hidden_units", hidden_units)
    check_dropout(dropout)
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer of at least 2, received num_classes={num_classes!r}")


@keras.saving.register_keras_serializable(package="bilstm_kd")
class BiLSTMClassifier(_Student):
    """Single-sentence student: embeddings -> BiLSTM -> both final states -> Dense + ReLU -> logits.

    Paper sizes (SST-2): 300-d multichannel word2vec vectors (600-d input), 150 LSTM units per direction,
    a 200-unit ReLU layer; 961,802 parameters besides the embeddings.

    Args:
        vocabulary_size: number of word ids, padding (0) included.
        embedding_dim: size of the word vectors (of each copy when multichannel).
        num_classes: number of output logits.
        lstm_units: LSTM state size per direction.
        hidden_units: size of the ReLU layer.
        multichannel: a frozen and a trainable copy of the word vectors (Kim, 2014).
        dropout: dropout rate on the sentence encoding and on the ReLU layer, while training.
        lstm_kernel: how the BiLSTM runs (`MaskedBiLSTM`): cuDNN on a GPU and the packed loop elsewhere
            (`"auto"`), or `"cudnn"` / `"masked"`. It changes neither the function nor the weights.

    Call arguments:
        token_ids: int32 `[batch, time]`, 0 = padding (right-padded).

    Example:
    >>> student = BiLSTMClassifier(vocabulary_size=20, embedding_dim=4, num_classes=2, lstm_units=3,
    ...                            hidden_units=5)
    >>> student(np.array([[5, 6, 7, 0], [8, 0, 0, 0]], "int32")).shape
    TensorShape([2, 2])
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int,
        num_classes: int,
        lstm_units: int = 150,
        hidden_units: int = 200,
        multichannel: bool = True,
        dropout: float = 0.0,
        lstm_kernel: str = "auto",
        **kwargs,
    ):
        _check_student_arguments(num_classes, lstm_units, hidden_units, dropout)
        # === Layers ===
        self.embedding = StudentEmbedding(vocabulary_size, embedding_dim, multichannel, name="embedding")
        self.encoder = MaskedBiLSTM(lstm_units, lstm_kernel=lstm_kernel, name="encoder")
        self.encoding_dropout = keras.layers.Dropout(dropout, name="encoding_dropout")
        self.hidden = keras.layers.Dense(hidden_units, activation="relu", name="hidden")
        self.hidden_dropout = keras.layers.Dropout(dropout, name="hidden_dropout")
        self.logits = keras.layers.Dense(num_classes, name="logits")

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        super().__init__(inputs=token_ids, outputs=self.classify((self._encode(token_ids),)), **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.lstm_units = lstm_units
        self.hidden_units = hidden_units
        self.multichannel = multichannel
        self.dropout = dropout

    def classify(self, encodings):
        """Logits from the sentence encoding, a one-tuple `(encoding,)` of `[batch, 2 * lstm_units]`."""
        (encoding,) = encodings
        return self.logits(self.hidden_dropout(self.hidden(self.encoding_dropout(encoding))))


@keras.saving.register_keras_serializable(package="bilstm_kd")
class SiameseBiLSTMClassifier(_Student):
    """Sentence-pair student: one shared BiLSTM encodes both sentences to `h1`, `h2`; the classifier sees
    `[h1, h2, h1 * h2, |h1 - h2|]` -> Dense + ReLU -> logits.

    Paper sizes (QQP, MNLI): 300-d multichannel vectors, 300 LSTM units per direction, 400 ReLU units.

    Args:
        vocabulary_size: number of word ids, padding (0) included.
        embedding_dim: size of the word vectors (of each copy when multichannel).
        num_classes: number of output logits.
        lstm_units: LSTM state size per direction.
        hidden_units: size of the ReLU layer.
        multichannel: a frozen and a trainable copy of the word vectors (Kim, 2014).
        dropout: dropout rate on the pair features and on the ReLU layer, while training.
        lstm_kernel: how the BiLSTM runs, as in `BiLSTMClassifier`.

    Call arguments:
        inputs: a tuple `(token_ids_a, token_ids_b)` of int32 `[batch, time]` ids, 0 = padding; the two may
            have different lengths.

    Example:
    >>> student = SiameseBiLSTMClassifier(vocabulary_size=20, embedding_dim=4, num_classes=3, lstm_units=3,
    ...                                   hidden_units=5)
    >>> student((np.array([[5, 6, 0]], "int32"), np.array([[7, 8, 9, 4]], "int32"))).shape
    TensorShape([1, 3])
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int,
        num_classes: int,
        lstm_units: int = 300,
        hidden_units: int = 400,
        multichannel: bool = True,
        dropout: float = 0.0,
        lstm_kernel: str = "auto",
        **kwargs,
    ):
        _check_student_arguments(num_classes, lstm_units, hidden_units, dropout)
        # === Layers ===
        self.embedding = StudentEmbedding(vocabulary_size, embedding_dim, multichannel, name="embedding")
        self.encoder = MaskedBiLSTM(lstm_units, lstm_kernel=lstm_kernel, name="encoder")
        self.features_dropout = keras.layers.Dropout(dropout, name="features_dropout")
        self.hidden = keras.layers.Dense(hidden_units, activation="relu", name="hidden")
        self.hidden_dropout = keras.layers.Dropout(dropout, name="hidden_dropout")
        self.logits = keras.layers.Dense(num_classes, name="logits")

        # === Functional model ===
        token_ids_a = keras.Input(shape=(None,), dtype="int32", name="token_ids_a")
        token_ids_b = keras.Input(shape=(None,), dtype="int32", name="token_ids_b")
        logits = self.classify((self._encode(token_ids_a), self._encode(token_ids_b)))
        super().__init__(inputs=(token_ids_a, token_ids_b), outputs=logits, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.lstm_units = lstm_units
        self.hidden_units = hidden_units
        self.multichannel = multichannel
        self.dropout = dropout

    def classify(self, encodings):
        """Logits from the two sentences' encodings `(encoding_a, encoding_b)`."""
        encoding_a, encoding_b = encodings
        features = keras.ops.concatenate(
            [encoding_a, encoding_b, encoding_a * encoding_b, keras.ops.abs(encoding_a - encoding_b)], axis=-1
        )
        return self.logits(self.hidden_dropout(self.hidden(self.features_dropout(features))))


def build_student(
    task: Task,
    vocabulary_size: int,
    embedding_matrix: np.ndarray | None = None,
    embedding_dim: int = 300,
    lstm_units: int = 150,
    hidden_units: int = 200,
    multichannel: bool = True,
    dropout: float = 0.0,
    lstm_kernel: str = "auto",
) -> keras.Model:
    """The student for `task`: a `SiameseBiLSTMClassifier` for sentence pairs, else a `BiLSTMClassifier`.

    Args:
        task: decides single sentence vs pair and the number of classes.
        vocabulary_size: number of word ids, reserved tokens included.
        embedding_matrix: pretrained vectors `[vocabulary_size, dim]`; they set the embedding size.
        embedding_dim: the embedding size without `embedding_matrix`.
        lstm_units, hidden_units, multichannel, dropout, lstm_kernel: as in `BiLSTMClassifier`.
    """
    if embedding_matrix is not None:
        embedding_matrix = np.asarray(embedding_matrix)
        if embedding_matrix.ndim != 2 or embedding_matrix.shape[0] != vocabulary_size:
            raise ValueError(
                f"embedding_matrix must have shape (vocabulary_size={vocabulary_size}, dim), "
                f"received shape {embedding_matrix.shape}"
            )
        embedding_dim = embedding_matrix.shape[1]
    student_class = SiameseBiLSTMClassifier if task.is_pair else BiLSTMClassifier
    student = student_class(
        vocabulary_size=vocabulary_size,
        embedding_dim=embedding_dim,
        num_classes=task.num_classes,
        lstm_units=lstm_units,
        hidden_units=hidden_units,
        multichannel=multichannel,
        dropout=dropout,
        lstm_kernel=lstm_kernel,
        name=f"{task.name}_student",
    )
    if embedding_matrix is not None:
        student.set_embedding_weights(embedding_matrix)
    return student


def load_student(path: str | os.PathLike) -> keras.Model:
    """Reloads a student saved as `.keras`, in any process: importing this module registers its classes."""
    return keras.saving.load_model(path)
