"""Name policies: which names an authority or a provisioner may put in a certificate.

Pure functions of their inputs (no I/O): `NamePolicy` is the value a `policy.set` event
carries, `evaluate` and `PolicyChain.evaluate` decide a request.
"""

from __future__ import annotations

from ca.policy.names import NamePolicy, NameRules, NameType, PolicyChain, combine, evaluate

__all__ = ["NamePolicy", "NameRules", "NameType", "PolicyChain", "combine", "evaluate"]
