"""Training (training.smk): folk-rnn v2 trained on a corpus, resumably."""
