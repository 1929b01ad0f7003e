"""Stage 1 (tokens.smk): ABC and token files -> folk-rnn v2 tokens."""
