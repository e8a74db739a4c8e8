"""The transfer set: augmentation as tf.data ops (`augment`), building the set (`build`), its record format
(`records`), resumable sharded stores (`shards`) and the teacher's logits for it (`labelling`)."""
