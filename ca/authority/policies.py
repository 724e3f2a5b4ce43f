"""Name policies as `policy.set` events, at authority or provisioner level (deny beats allow).

Shared by `ledgerca policy …` and the admin API; the policy is parsed (and so validated)
before anything is appended, and the append names the stream version it replaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ca.authority.provisioners import find
from ca.policy import NamePolicy
from ledger import EventStore, NewEvent, RecordedEvent
from projections.events import PolicySet


def scope_of(store: EventStore, provisioner: str | None) -> tuple[str, str | None]:
    """(`authority` | `provisioner/<id>`, provisioner id | None) for a provisioner name."""
    if provisioner is None:
        return "authority", None
    row = find(store, provisioner)
    return f"provisioner/{row.id}", row.id


def set_policy(
    store: EventStore,
    provisioner: str | None,
    policy: Mapping[str, Any] | None,
    *,
    actor: Mapping[str, Any],
    also: Sequence[NewEvent] = (),
) -> RecordedEvent:
    """Set (or, with None, clear) the policy of the authority or of a provisioner.

    `also`: events appended atomically with the change (the caller's spent admin token).
    """
    normalised = NamePolicy.from_json(policy).to_json() if policy is not None else None
    scope, provisioner_id = scope_of(store, provisioner)
    policy_set = PolicySet(scope=scope, provisioner_id=provisioner_id, policy=normalised)
    stream = policy_set.stream
    event, *_ = store.append(
        [policy_set.to_new_event(), *also],
        actor=actor,
        expected={stream: store.stream_version(stream)},
    )
    return event
