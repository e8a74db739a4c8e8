"""MPNet (all-mpnet-base-v2) for the teacher, keras-hub style: a drop-in for keras-hub's BERT classes.

`MPNetBackbone` takes and returns what `BertBackbone` does, `MPNetTokenizer` is MPNet's WordPiece tokenizer,
`MPNetTextClassifierPreprocessor` packs text as `BertTextClassifierPreprocessor` does (with MPNet's
`<s> A </s></s> B </s>`), and `from_hugging_face` loads a local Hugging Face checkpoint into the first two.
Importing this package registers the classes with Keras, for `.keras` files and `from_preset`.

Example:
>>> backbone, tokenizer = from_hugging_face(os.path.expanduser("~/.cache/bilstm_kd/all-mpnet-base-v2"))
>>> preprocessor = MPNetTextClassifierPreprocessor(tokenizer, sequence_length=128)
>>> outputs = backbone(preprocessor(["a charming and affecting journey"]))
"""

from bilstm_kd.teacher.mpnet.backbone import MPNetBackbone
from bilstm_kd.teacher.mpnet.convert import from_hugging_face
from bilstm_kd.teacher.mpnet.preprocessor import MPNetTextClassifierPreprocessor
from bilstm_kd.teacher.mpnet.tokenizer import MPNetTokenizer

__all__ = ["MPNetBackbone", "MPNetTextClassifierPreprocessor", "MPNetTokenizer", "from_hugging_face"]
