"""What each role may do. Views name a capability; this table is the single place that maps it to roles."""

from __future__ import annotations

from enum import StrEnum

from workbench.models import Role


class Capability(StrEnum):
    VIEW = "view"  # browse the project's corpus, queries, jobs, results
    MANAGE_DATA = "manage_data"  # import, export, create corpora
    MANAGE_MEMBERS = "manage_members"
    JUDGE = "judge"
    REVIEW = "review"
    RUN_JOBS = "run_jobs"  # index builds, training, evaluation
    SEARCH = "search"


ALL_ROLES = frozenset(Role.values)

ROLES_FOR: dict[Capability, frozenset[str]] = {
    Capability.VIEW: ALL_ROLES,
    Capability.SEARCH: ALL_ROLES,
    Capability.MANAGE_DATA: frozenset({Role.ML_LEAD, Role.ADMIN}),
    Capability.MANAGE_MEMBERS: frozenset({Role.ADMIN}),
    Capability.JUDGE: frozenset({Role.ANNOTATOR, Role.ML_LEAD, Role.ADMIN}),
    Capability.REVIEW: frozenset({Role.REVIEWER, Role.ML_LEAD, Role.ADMIN}),
    Capability.RUN_JOBS: frozenset({Role.ML_LEAD, Role.ADMIN}),
}


def role_allows(role: str | None, capability: Capability) -> bool:
    return role is not None and role in ROLES_FOR[capability]
