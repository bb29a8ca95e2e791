"""The abuse suite: raw HTTP/2 attacks on maturityd over mutual TLS (see run.py)."""
