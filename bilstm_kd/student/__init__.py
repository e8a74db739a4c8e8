"""The BiLSTM students: layers (`layers`: `MaskedBiLSTM`, `StudentEmbedding`), models (`models`) and the
students' optimizer (`optimizers`)."""
