"""Read models derived from the ledger, and the runner that keeps them current."""
