"""The models a user would pick instead of this tool, trained on the same split so every report can set the
student beside them: TF-IDF + logistic regression (`linear`)."""
