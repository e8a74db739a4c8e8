"""The student's view of text: tokenization and vocabulary (`vocab`), initial word vectors (`embeddings`) and
part-of-speech tags for augmentation (`pos`)."""

TOKENIZERS = ("glue", "regex")  # `vocab.tokenize`; here, so that the flags check it before TensorFlow loads
