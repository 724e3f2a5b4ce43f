"""`python -m ca` is `ledgerca`."""

from ca.cli import main

main()
