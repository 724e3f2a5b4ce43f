"""Administrators of the admin API, all on one stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from projections.events.base import Event
from projections.events.streams import ADMINS, Stream


@dataclass(frozen=True, kw_only=True, slots=True)
class AdminAdded(Event):
    """A subject becomes an admin, bound to the provisioner that authenticates it."""

    TYPE: ClassVar[str] = "admin.added"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = ADMINS

    id: str
    """A new UUID for the admin."""
    subject: str
    """A client certificate's CN or SAN, or a token's `sub`."""
    provisioner_id: str
    """The provisioner whose certificates or tokens authenticate the admin."""
    provisioner_name: str
    """That provisioner's name at the time."""
    type: str
    """`ADMIN` (provisioners and policies) or `SUPER_ADMIN` (admins too)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AdminRemoved(Event):
    """An admin loses its rights (also appended when its provisioner is removed)."""

    TYPE: ClassVar[str] = "admin.removed"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = ADMINS

    id: str
    """The admin's id."""
    subject: str
    """Its subject."""
