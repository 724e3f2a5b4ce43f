"""Placeholder: commands are added by the lifecycle work (issue 5)."""

from __future__ import annotations
