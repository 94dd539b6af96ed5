from __future__ import annotations

from django.http import HttpRequest

from workbench.models import Role
from workbench.roles import Capability, role_allows


def capabilities(request: HttpRequest) -> dict:
    """``can.<capability>`` for the current project role, so templates show only what the user may do."""
    role = getattr(request, "role", None)
    label = Role(role).label if role in Role.values else ""
    return {"can": {c.value: role_allows(role, c) for c in Capability}, "role_label": label}
