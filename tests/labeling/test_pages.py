"""Labeling pages through the test client: campaign creation with the pool job, htmx and plain-form judging,
adjudication, snapshot freeze/export, the automatic judge against a local stub endpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.test import Client
from django.urls import reverse

from labeling import selectors
from labeling.models import Adjudication, Assignment, AutoGrade, Campaign, LabelSnapshot
from tests.factories import PASSWORD
from workbench.models import Job, Judgment, QueryTag

pytestmark = pytest.mark.django_db


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(user)
    return c


def test_create_campaign_by_form_builds_pool_as_job(indexed, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, _index, configs = indexed
    tag = QueryTag.objects.get(project=project, name="train")
    url = reverse("labeling:campaign_new", kwargs={"slug": project.slug})
    c = _client(lead)
    assert c.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(url, {
            "name": "form", "corpus": corpus.pk, "tag": tag.pk, "query_ids": "", "configurations": [configs[0].pk],
            "depth": 2, "overlap": 1, "blind": "on", "aggregation": "top3_min", "disagreement_threshold": 1,
            "order": "informative", "guidelines": "Be **kind**", "build": "1",
        })  # fmt: skip
    assert r.status_code == 302, r.content.decode()[:2000]
    campaign = Campaign.objects.get(name="form")
    assert campaign.status == "open" and campaign.job.status == Job.Status.SUCCEEDED
    assert campaign.items.count() > 0
    page = c.get(reverse("labeling:campaign", kwargs={"slug": project.slug, "pk": campaign.pk})).content.decode()
    assert "<strong>kind</strong>" in page and "Progress" in page
    bad = c.post(url, {"name": "x", "corpus": corpus.pk, "configurations": [configs[0].pk], "depth": 2,
                       "overlap": 1, "aggregation": "mean", "disagreement_threshold": 1,
                       "order": "random"})  # fmt: skip
    assert bad.status_code == 200 and "Pick a query tag" in bad.content.decode()


def test_judging_htmx_and_plain_forms(campaign_world) -> None:  # type: ignore[no-untyped-def]
    project, _lead, _corpus, campaign, judges = campaign_world
    c = _client(judges[0])
    judge_url = reverse("labeling:judge", kwargs={"slug": project.slug, "pk": campaign.pk})
    page = c.get(judge_url).content.decode()
    first = selectors.assignment_next(campaign, judges[0])
    assert f"/judge/{first.pk}/" in page and 'id="passage-text"' in page
    submit = reverse(
        "labeling:judge_submit", kwargs={"slug": project.slug, "pk": campaign.pk, "assignment_pk": first.pk}
    )
    # htmx: the next pane comes back as a fragment.
    r = c.post(submit, {"grade": "2", "evidence": "[[0, 4]]", "seconds": "2.5"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "<html" not in r.content.decode() and 'id="judge-pane"' in r.content.decode()
    j = Assignment.objects.get(pk=first.pk).judgment
    assert (j.grade, j.evidence, j.seconds) == (2, [[0, 4]], 2.5)
    # Off-scale grade through htmx: an inline error, nothing written.
    second = selectors.assignment_next(campaign, judges[0])
    submit2 = reverse(
        "labeling:judge_submit", kwargs={"slug": project.slug, "pk": campaign.pk, "assignment_pk": second.pk}
    )
    r = c.post(submit2, {"grade": "9"}, HTTP_HX_REQUEST="true")
    assert "outside the scale" in r.content.decode() and Assignment.objects.get(pk=second.pk).judgment is None
    # No JavaScript: offsets typed as text, seconds from the time the page was shown, then a redirect.
    r = c.post(submit2, {"grade": "1", "evidence": "1-3 5-8", "shown_at": "0"})
    assert r.status_code == 302
    j2 = Assignment.objects.get(pk=second.pk).judgment
    assert j2.evidence == [[1, 3], [5, 8]] and j2.seconds == 3600.0  # capped
    undo = reverse("labeling:judge_undo", kwargs={"slug": project.slug, "pk": campaign.pk, "assignment_pk": second.pk})
    assert c.post(undo).status_code == 302 and Assignment.objects.get(pk=second.pk).judgment is None
    # Someone else's pair: refused; another project's judge: 404.
    theirs = selectors.assignment_next(campaign, judges[1])
    other = reverse(
        "labeling:judge_submit", kwargs={"slug": project.slug, "pk": campaign.pk, "assignment_pk": theirs.pk}
    )
    r = c.post(other, {"grade": "1"}, HTTP_HX_REQUEST="true")
    assert "no longer assigned to you" in r.content.decode()
    assert Judgment.objects.filter(source="annotator").count() == 1
    assert c.get(judge_url + f"?a={theirs.pk}").status_code == 404
    mine = c.get(reverse("labeling:my_judgments", kwargs={"slug": project.slug, "pk": campaign.pk}))
    assert "revise" in mine.content.decode()


def test_adjudicate_and_freeze_and_export(campaign_world) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, campaign, judges = campaign_world
    grades = {judges[0].pk: 3, judges[1].pk: 0, judges[2].pk: 1}
    for a in Assignment.objects.filter(item__campaign=campaign):
        Client().logout()
        c = _client(a.annotator)
        url = reverse("labeling:judge_submit", kwargs={"slug": project.slug, "pk": campaign.pk, "assignment_pk": a.pk})
        c.post(url, {"grade": str(grades[a.annotator_id])})
    lead_client = _client(lead)
    queue = lead_client.get(reverse("labeling:adjudicate", kwargs={"slug": project.slug, "pk": campaign.pk}))
    item = selectors.adjudication_queue(campaign)[0]["item"]
    assert "Adjudicate" in queue.content.decode()
    url = reverse("labeling:adjudicate_item", kwargs={"slug": project.slug, "pk": campaign.pk, "item_pk": item.pk})
    assert lead_client.get(url).status_code == 200
    assert lead_client.post(url, {"grade": "9"}).status_code == 200 and not Adjudication.objects.exists()
    assert lead_client.post(url, {"grade": "2", "note": "checked"}).status_code == 302
    assert Adjudication.objects.get().grade == 2
    agg = reverse("labeling:campaign_aggregate", kwargs={"slug": project.slug, "pk": campaign.pk})
    assert lead_client.post(agg).status_code == 302
    assert Adjudication.objects.filter(method="rule").count() == campaign.items.count() - 1
    agreement = lead_client.get(reverse("labeling:agreement", kwargs={"slug": project.slug, "pk": campaign.pk}))
    assert "Krippendorff" in agreement.content.decode()
    freeze = reverse("labeling:snapshot_new", kwargs={"slug": project.slug})
    r = lead_client.post(freeze, {"name": "v1", "corpus": corpus.pk, "source": "gold", "dev_fraction": 0.2, "seed": 1,
                                  "audited": "on"})  # fmt: skip
    assert r.status_code == 302
    snapshot = LabelSnapshot.objects.get(name="v1")
    detail = lead_client.get(reverse("labeling:snapshot", kwargs={"slug": project.slug, "pk": snapshot.pk}))
    assert snapshot.content_hash in detail.content.decode()
    export = reverse("labeling:snapshot_export", kwargs={"slug": project.slug, "pk": snapshot.pk})
    trec = b"".join(lead_client.get(export + "?format=trec").streaming_content).decode().splitlines()
    beir = b"".join(lead_client.get(export + "?format=beir").streaming_content).decode().splitlines()
    assert len(trec) == snapshot.judgments.count() == len(beir) - 1 and beir[0] == "query-id\tcorpus-id\tscore"
    q, _, d, g = trec[0].split()
    assert snapshot.judgments.get(query__external_id=q, document__external_id=d).grade == int(g)
    # Immutable: the same name is refused with a message, nothing written.
    r = lead_client.post(freeze, {"name": "v1", "corpus": corpus.pk, "source": "gold", "dev_fraction": 0.2, "seed": 1})
    assert "already exists" in r.content.decode() and LabelSnapshot.objects.count() == 1


class _Stub(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "model": body["model"]})
        answer = "2" if "Query" in body["messages"][1]["content"] else "?"
        payload = json.dumps({"choices": [{"message": {"content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


def test_automatic_judge_is_one_more_rater_never_gold(
    campaign_world, monkeypatch, eager_celery, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    project, lead, _corpus, campaign, judges = campaign_world
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("STUB_LLM_KEY", "sekret")
    try:
        url = reverse("labeling:campaign_autojudge", kwargs={"slug": project.slug, "pk": campaign.pk})
        with django_capture_on_commit_callbacks(execute=True):
            r = _client(lead).post(url, {"base_url": f"http://127.0.0.1:{server.server_port}/v1", "model": "stub-1",
                                         "api_key_env": "STUB_LLM_KEY", "limit": 100})  # fmt: skip
        assert r.status_code == 302
    finally:
        server.shutdown()
        thread.join(timeout=5)
    job = Job.objects.get(kind="campaign_autojudge")
    assert job.status == "succeeded", job.message
    assert AutoGrade.objects.filter(judge="llm:stub-1").count() == campaign.items.count()
    assert _Stub.seen[0]["path"] == "/v1/chat/completions" and _Stub.seen[0]["auth"] == "Bearer sekret"
    assert not Judgment.objects.exclude(source="imported").exists()  # never gold, not even a judgment
    for a in Assignment.objects.filter(item__campaign=campaign, annotator=judges[0]):
        from labeling.services.campaigns import judgment_submit

        judgment_submit(assignment_id=a.pk, user=judges[0], grade=2)
    figures = selectors.campaign_agreement(campaign, resamples=10)
    auto = figures["auto"][0]
    assert auto["judge"] == "llm:stub-1" and dict((n, f.items) for n, f in auto["humans"])[judges[0].username] > 0
    assert PASSWORD  # the factories' password stays importable for the browser tests


def test_query_list_mode(campaign_world) -> None:  # type: ignore[no-untyped-def]
    project, _, _, campaign, judges = campaign_world
    a = selectors.assignment_next(campaign, judges[0])
    c = _client(judges[0])
    url = reverse("labeling:judge_query", kwargs={"slug": project.slug, "pk": campaign.pk, "query_pk": a.item.query_id})
    page = c.get(url).content.decode()
    mine = selectors.my_assignments(campaign, judges[0]).filter(item__query_id=a.item.query_id)
    assert all(f'id="a{x.pk}"' in page for x in mine)
    submit = reverse("labeling:judge_submit", kwargs={"slug": project.slug, "pk": campaign.pk, "assignment_pk": a.pk})
    r = c.post(submit, {"grade": "3", "back": "query"})
    assert r.status_code == 302 and r["Location"].endswith(f"#a{a.pk}")
    assert Assignment.objects.get(pk=a.pk).judgment.grade == 3


def test_cross_encoder_judge(
    campaign_world, tiny_cross_encoder_path, eager_celery, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from labeling.services.autojudge import grade_from_score
    from workbench.services import indexes

    project, lead, _, campaign, _ = campaign_world
    model = indexes.model_register(project=project, path=str(tiny_cross_encoder_path), name="ce", user=lead)
    url = reverse("labeling:campaign_autojudge", kwargs={"slug": project.slug, "pk": campaign.pk})
    model.usable_for_search = False
    model.save(update_fields=["usable_for_search"])
    r = _client(lead).post(url, {"kind": "cross_encoder", "cross_encoder": model.pk, "limit": 50})
    assert r.status_code == 302 and not Job.objects.filter(kind="campaign_autojudge").exists()  # untrained: refused
    model.usable_for_search = True
    model.save(update_fields=["usable_for_search"])
    with django_capture_on_commit_callbacks(execute=True):
        _client(lead).post(url, {"kind": "cross_encoder", "cross_encoder": model.pk, "limit": 50})
    job = Job.objects.get(kind="campaign_autojudge")
    assert job.status == "succeeded", job.message
    assert AutoGrade.objects.filter(judge="cross-encoder:ce").count() == campaign.items.count()
    assert not Judgment.objects.exclude(source="imported").exists()
    assert [grade_from_score(s, 0, 3) for s in (-20, -0.6, 0.6, 20)] == [0, 1, 2, 3]
