"""A writer process for the concurrency tests: `python appender.py URL NAME COUNT`.

Appends COUNT single-event transactions to stream `writer/NAME`, each its own commit, as
fast as it can, so that several of these interleave their commits on one database.
"""

from __future__ import annotations

import sys

from ledger import EventStore, NewEvent, create_engine


def main(url: str, name: str, count: int) -> None:
    engine = create_engine(url)
    store = EventStore(engine)
    for n in range(count):
        store.append([NewEvent(f"writer/{name}", "test.appended", {"writer": name, "n": n})])
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
