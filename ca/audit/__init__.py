"""Audit and forensics over the ledger: the ledger key, signed checkpoints, inclusion proofs,
full verification, point-in-time replay, and a certificate's story."""
