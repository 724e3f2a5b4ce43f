"""Private keys: generation, encryption at rest and the files that hold them."""
