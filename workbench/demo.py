"""The SciFact demo project and one demo user per role (used by `make run`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from workbench.models import Corpus, Membership, Project, Role
from workbench.services.imports import beir_import
from workbench.services.indexes import encoder_base_ensure

DEMO_SLUG = "scifact"
DEMO_USERS = {"annotator": Role.ANNOTATOR, "reviewer": Role.REVIEWER, "mllead": Role.ML_LEAD, "admin": Role.ADMIN}


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD", "workbench-demo")


def demo_users_ensure() -> dict[str, str]:
    """Create the demo users (idempotent); the admin is also a Django superuser."""
    User = get_user_model()
    for username, role in DEMO_USERS.items():
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(demo_password())
            user.is_staff = user.is_superuser = role == Role.ADMIN
            user.save()
    return {u: r.value for u, r in DEMO_USERS.items()}


def demo_project_ensure(*, folder: Path | None = None, progress: Callable[[float, str], None] | None = None) -> str:
    """Create the SciFact demo project and import the dataset once; returns what happened."""
    folder = folder or settings.SCIFACT_DIR
    User = get_user_model()
    with transaction.atomic():
        project, _ = Project.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={
                "name": "SciFact demo",
                "description": "BEIR SciFact: claims, abstracts and relevance judgments; the test split is held out.",
            },
        )
        for username, role in DEMO_USERS.items():
            user = User.objects.filter(username=username).first()
            if user:
                Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
        corpus, _ = Corpus.objects.get_or_create(project=project, name="scifact")
        encoder_base_ensure(project=project)
    if corpus.documents.exists():
        return "The SciFact demo is already loaded."
    if not (folder / "corpus.jsonl").is_file():
        return (
            f"SciFact was not found at {folder}; the demo project is empty. Set SCIFACT_DIR to a BEIR SciFact folder "
            "and run `make demo`, or upload a corpus in the browser."
        )
    admin = User.objects.filter(username="admin").first()
    result = beir_import(
        project=project, corpus=corpus, folder=folder, user=admin, progress=progress or (lambda f, m: None)
    )
    return result["message"]
