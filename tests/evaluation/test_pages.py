"""Evaluation pages as plain GET/POST: create, results, comparison, drill-down (escaped), downloads, roles."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.urls import reverse

from evaluation.exports import CSV_COLUMNS
from evaluation.models import EvalConfig, EvalRun
from tests.factories import make_user
from workbench.models import Document, Job, Query, QueryTag, Role

pytestmark = pytest.mark.django_db


def _formset(rows: list[dict]) -> dict:
    data = {"cfg-TOTAL_FORMS": str(len(rows)), "cfg-INITIAL_FORMS": str(len(rows)), "cfg-MIN_NUM_FORMS": "0",
            "cfg-MAX_NUM_FORMS": "8"}  # fmt: skip
    for i, row in enumerate(rows):
        data.update({f"cfg-{i}-{k}": v for k, v in row.items()})
    return data


def test_create_view_and_download_an_evaluation(client, built, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, index = built
    client.force_login(lead)
    url = reverse("evaluation:new", kwargs={"slug": project.slug})
    page = client.get(url).content.decode()
    test = QueryTag.objects.get(project=project, name="test")
    assert f'<option value="{test.pk}" selected>tag test (held out)</option>' in page
    # Bad input comes back as a form error, and nothing is started.
    bad = {"query_set": test.pk, "depth": 0, "baseline": 1, "resamples": 1000, "seed": 3}
    rows = [{"index": index.pk, "mode": "dense", "alpha": 0.5, "rerank_top_n": 50},
            {"index": index.pk, "mode": "hybrid", "alpha": 0.5, "rerank_top_n": 50},
            {"index": "", "mode": "dense", "alpha": 0.5, "rerank_top_n": 50}]  # fmt: skip
    html = client.post(url, {**bad, **_formset(rows)}).content.decode()
    assert "Depth (documents per query) must be between 10 and 333 (got 0)" in html and not EvalRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {**bad, "depth": 100, **_formset(rows)})
    run = EvalRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/evaluations/{run.pk}/")
    assert Job.objects.get(pk=run.job_id).status == "succeeded"
    assert run.configs.count() == 2 and run.seed == 3

    detail = reverse("evaluation:detail", kwargs={"slug": project.slug, "pk": run.pk})
    html = client.get(detail).content.decode()
    for needle in ("recall@100", "P@5", "MRR@10", "nDCG@5", "MAP", "max passage score per document", "Hard subset",
                   "p95", "verdict-", "1000 resamples", 'id="eval-data"', "chart-4.6.1.umd.min.js", "eval-charts.js",
                   "Evaluated", "Excluded"):  # fmt: skip
        assert needle in html, needle
    data = json.loads(html.split('<script id="eval-data" type="application/json">')[1].split("</script>")[0])
    assert set(data) == {"configs", "baseline", "recall", "slices", "diff", "top1"}
    assert data["recall"]["ks"] == [1, 3, 5, 10, 20, 100] and data["diff"]["metric"] == "nDCG@10"
    one = data["slices"]["values"]["nDCG@10"][data["configs"][0]][0]
    assert set(one) == {"n", "mean", "low", "high"} and one["n"] == 10
    hard = next((s for s in run.slices), None)
    if hard:  # a slice link narrows the comparison table to it
        assert f"slice {hard}" in client.get(detail, {"slice": hard}).content.decode()
    poll = client.get(detail, {"status": "1"}, HTTP_HX_REQUEST="true")
    assert poll["HX-Refresh"] == "true" and "<html" not in poll.content.decode()

    cfg = run.configs.get(position=1)
    trec = client.get(reverse("evaluation:run_file", kwargs={"slug": project.slug, "pk": run.pk, "config_pk": cfg.pk}))
    lines = b"".join(trec.streaming_content).decode().splitlines()
    assert trec["Content-Disposition"].startswith("attachment") and len(lines[0].split()) == 6
    assert lines[0].split()[3] == "1" and lines[0].split()[5] == cfg.run_tag
    body = client.get(reverse("evaluation:report_json", kwargs={"slug": project.slug, "pk": run.pk})).json()
    assert body["semantics"]["aggregation"] == "max passage score per document"
    assert len(body["configs"]) == 2 and "per_query" in body["configs"][0]["metrics"]
    text = client.get(reverse("evaluation:report_csv", kwargs={"slug": project.slug, "pk": run.pk})).content.decode()
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == CSV_COLUMNS
    assert {r["verdict"] for r in table if r["is_baseline"] == "False"} <= {"better", "worse", "not significant"}

    # Comparing with another baseline works without JavaScript, a plain GET.
    other = run.configs.get(position=2)
    compare = reverse("evaluation:compare", kwargs={"slug": project.slug})
    html = client.get(compare, {"baseline": other.pk, "candidate": cfg.pk}).content.decode()
    assert "verdict-" in html and "Holm" in html and "compare-error" not in html
    html = client.get(compare, {"baseline": other.pk, "candidate": other.pk}).content.decode()
    assert "Pick at least one configuration other than the baseline" in html


def test_drilldown_escapes_text_and_lists_unjudged_pairs(client, built) -> None:  # type: ignore[no-untyped-def]
    from evaluation import services
    from tests.evaluation.factories import spec

    project, lead, corpus, index = built
    test = QueryTag.objects.get(project=project, name="test")
    run = services.eval_run_start(
        project=project, user=lead, tag=test, resamples=200, background=False,
        configs=[spec(index=index, mode="bm25"), spec(index=index, mode="dense")],
    )  # fmt: skip
    query = Query.objects.get(project=project, external_id=run.configs.first().results["metrics"]["qids"][0])
    query.text = "<script>alert('q')</script> claim"
    query.save()
    Document.objects.filter(corpus=corpus).update(title="<b>bold</b> title")
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)  # viewers may read results
    url = reverse("evaluation:query", kwargs={"slug": project.slug, "pk": run.pk, "query_pk": query.pk})
    html = client.get(url, {"k": 10}).content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;q&#x27;)&lt;/script&gt; claim" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert html.count('data-testid="drilldown-column"') == 2
    assert "Missed relevant documents" in html and "Unjudged documents in the top 10" in html
    assert 'class="unjudged' in html  # a random tiny encoder surely ranks unjudged documents in its top 10
    csv_url = reverse("evaluation:unjudged_csv", kwargs={"slug": project.slug, "pk": run.pk})
    rows = list(csv.DictReader(io.StringIO(client.get(csv_url, {"query": query.pk, "k": 10}).content.decode())))
    assert rows and {r["query_id"] for r in rows} == {query.external_id}
    judged = set(query.judgments.values_list("document__external_id", flat=True))
    assert all(r["doc_id"] not in judged and 1 <= int(r["best_rank"]) <= 10 for r in rows)
    assert rows[0]["query_text"].startswith("<script>")  # CSV carries the raw text; it is data, not HTML
    everyone = list(csv.DictReader(io.StringIO(client.get(csv_url).content.decode())))
    assert len({r["query_id"] for r in everyone}) > 1
    assert 'data-testid="send-to-judging"' not in html and "not available" not in html  # an annotator
    client.force_login(lead)
    html = client.get(url, {"k": 10}).content.decode()
    send = re.search(r'data-testid="send-to-judging" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "depth=10" in send and all(f"configurations={c.configuration_id}" in send for c in run.configs.all())
    form = client.get(send).content.decode()
    for c in run.configs.all():  # the campaign form comes with the run's configurations ticked
        assert re.search(rf'value="{c.configuration_id}"[^>]*checked', form)


def test_roles_create_needs_run_jobs_and_outsiders_see_nothing(client, built) -> None:  # type: ignore[no-untyped-def]
    project = built[0]
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    new = reverse("evaluation:new", kwargs={"slug": project.slug})
    assert client.get(new).status_code == 403
    assert client.post(new, {"depth": 100}).status_code == 403
    listing = client.get(reverse("evaluation:list", kwargs={"slug": project.slug})).content.decode()
    assert "New evaluation" not in listing and "Evaluations" in listing
    client.force_login(make_user("stranger"))
    assert client.get(reverse("evaluation:list", kwargs={"slug": project.slug})).status_code == 404
    assert client.get(new).status_code == 404
    assert not EvalConfig.objects.exists()
