"""Evaluations pinned to a frozen label snapshot's split, and the one-click comparison with what is served."""

from __future__ import annotations

import pytest

from evaluation import services
from evaluation.query_sets import pinned_qrels, query_set_choices, query_set_parse
from evaluation.slicing import qrels_hash
from labeling.models import LabelSnapshot
from labeling.services.snapshots import snapshot_freeze
from tests.evaluation.factories import spec
from tests.factories import make_project
from workbench.errors import WorkbenchError
from workbench.models import Document, Judgment, Query, QueryTag
from workbench.services.configurations import search_configuration_create, serving_set

pytestmark = pytest.mark.django_db


def _named(config, name: str):  # type: ignore[no-untyped-def]
    config.name = name
    return config


def _snapshot(project, corpus, lead) -> LabelSnapshot:  # type: ignore[no-untyped-def]
    return snapshot_freeze(
        project=project, corpus=corpus, name="imported", user=lead, source="imported", dev_fraction=0.4, seed=1
    )


def test_pinned_evaluation_uses_the_frozen_gold_not_the_live_one(built, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, index = built
    snapshot = _snapshot(project, corpus, lead)
    dev_qids = set(snapshot.queries.filter(split="dev").values_list("query__external_id", flat=True))
    assert dev_qids
    frozen = pinned_qrels(snapshot, "dev")
    assert set(frozen) <= dev_qids
    # Live judging goes on after the freeze: a dev query gets a new relevant document.
    query = Query.objects.get(project=project, external_id=sorted(frozen)[0])
    other = Document.objects.filter(corpus=corpus).exclude(external_id__in=frozen[query.external_id]).first()
    Judgment.objects.create(project=project, query=query, document=other, grade=2, source="imported")
    with django_capture_on_commit_callbacks(execute=True):
        run = services.eval_run_start(
            project=project, user=lead, snapshot=snapshot, split="dev", resamples=1000,
            configs=[spec(index=index, mode="bm25"), spec(index=index, mode="dense")],
        )  # fmt: skip
    run.refresh_from_db()
    assert run.is_complete, run.job.message
    assert run.snapshot_id == snapshot.pk and run.snapshot_split == "dev"
    assert run.query_set == "snapshot imported (dev split)"
    assert run.qrels_sha256 == qrels_hash(frozen)  # the new live judgment is not in it
    assert run.report["configs"]
    evaluated = {q for c in run.configs.all() for q in c.results["metrics"]["qids"]}
    assert evaluated == set(frozen)


def test_pinned_evaluation_refuses_train_other_corpora_and_foreign_snapshots(built) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, index = built
    snapshot = _snapshot(project, corpus, lead)
    configs = [spec(index=index, mode="bm25")]
    with pytest.raises(WorkbenchError, match="dev or test split"):
        services.eval_run_start(project=project, user=lead, snapshot=snapshot, split="train", configs=configs)
    with pytest.raises(WorkbenchError, match="tag or on a snapshot split, not both"):
        services.eval_run_start(
            project=project, user=lead, snapshot=snapshot, split="dev", configs=configs,
            tag=QueryTag.objects.get(project=project, name="test"),
        )  # fmt: skip
    stranger = make_project()
    with pytest.raises(WorkbenchError, match="does not exist in this project"):
        query_set_parse(stranger, f"s{snapshot.pk}:dev")
    with pytest.raises(WorkbenchError, match="Unknown query set"):
        query_set_parse(project, f"s{snapshot.pk}:train")
    values = [v for v, _ in query_set_choices(project)]
    assert f"s{snapshot.pk}:dev" in values and f"s{snapshot.pk}:train" not in values


def test_against_served_starts_dev_and_held_out_comparisons(built, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, index = built
    snapshot = _snapshot(project, corpus, lead)
    served = search_configuration_create(configuration=_named(spec(index=index, mode="bm25"), "bm25"), user=lead)
    candidate = search_configuration_create(configuration=_named(spec(index=index, mode="dense"), "dense"), user=lead)
    with pytest.raises(WorkbenchError, match="Nothing is served"):
        services.eval_against_served(project=project, user=lead, configuration_id=candidate.pk)
    serving_set(project=project, configuration=served, user=lead)
    with pytest.raises(WorkbenchError, match="is the served configuration"):
        services.eval_against_served(project=project, user=lead, configuration_id=served.pk)
    with django_capture_on_commit_callbacks(execute=True):
        runs = services.eval_against_served(
            project=project, user=lead, configuration_id=candidate.pk, snapshot_id=snapshot.pk
        )
    assert [r.query_set for r in runs] == ["snapshot imported (dev split)", "tag test"]
    for run in runs:
        run.refresh_from_db()
        assert run.is_complete, run.job.message
        assert run.baseline.configuration_id == served.pk
        assert {c.configuration_id for c in run.configs.all()} == {served.pk, candidate.pk}


def test_one_click_view_redirects_to_the_dev_comparison(built, client, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, index = built
    snapshot = _snapshot(project, corpus, lead)
    served = search_configuration_create(configuration=_named(spec(index=index, mode="bm25"), "bm25"), user=lead)
    candidate = search_configuration_create(configuration=_named(spec(index=index, mode="dense"), "dense"), user=lead)
    serving_set(project=project, configuration=served, user=lead)
    client.force_login(lead)
    url = f"/p/{project.slug}/evaluations/against-served/"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"configuration": candidate.pk, "snapshot": snapshot.pk})
    assert response.status_code == 302
    dev = project.eval_runs.get(snapshot=snapshot)
    assert response["Location"].endswith(f"/evaluations/{dev.pk}/")
    response = client.post(url, {"configuration": served.pk}, follow=True)
    assert b"is the served configuration" in response.content
