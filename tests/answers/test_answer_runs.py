"""Answer runs on the database: a real (tiny) index over a SciFact slice, gold figures, failures, reviews, flags."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import IntegrityError, connection, transaction

from evaluation.answers import selectors, services
from evaluation.models import Answer, AnswerCitation, AnswerFlag, AnswerReview, AnswerRun, AutoSupport, ClaimReview
from tests.answers.factories import make_finished_answer_run, review_payload
from tests.factories import make_indexed_project, make_project, make_user
from workbench.errors import WorkbenchError
from workbench.models import Job, QueryTag, Role
from workbench.services.configurations import search_configuration_create, search_configuration_draft


@pytest.fixture
def indexed(db, scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    project, lead, _corpus, _encoder, index = make_indexed_project(
        scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks
    )
    draft = search_configuration_draft(project=project, index=index, mode="hybrid")
    draft.name = "hybrid tiny"
    configuration = search_configuration_create(configuration=draft, user=lead)
    return project, lead, configuration


def _run(indexed, **kw):  # type: ignore[no-untyped-def]
    project, lead, configuration = indexed
    defaults = {"tag": QueryTag.objects.get(project=project, name="test"), "abstain_threshold": 0.0}
    return services.answer_run_start(
        project=project, user=lead, configuration=configuration, background=False, **{**defaults, **kw}
    )


def test_extractive_run_stores_answers_citations_passages_and_gold_figures(indexed, scifact_gold) -> None:  # type: ignore[no-untyped-def]
    run = _run(indexed, gold="scifact", passages_k=4)
    answers = list(run.answers.all())
    assert run.is_complete and len(answers) == 10 == run.summary["counts"]["queries"]
    answered = [a for a in answers if a.status == Answer.Status.ANSWERED]
    assert answered, run.summary
    for a in answered:
        assert a.retrieved.count() == 4
        assert set(a.latency_ms) == {"retrieve", "rerank", "generate", "total"}
        for claim in a.claims.all():
            assert a.text[claim.start : claim.end] == claim.text
            for c in claim.citations.all():
                assert c.retrieved.text[c.start : c.end] == claim.text  # extractive: the cited sentence itself
                assert c.gold_support is not None
    gold = run.summary["gold"]
    assert {"all", "nei", "evidence"} <= set(gold["slices"])
    all_ = gold["slices"]["all"]
    assert all_["n"] == 10 and all_["failed"] == 0
    recall = all_["metrics"]["citation_recall"]
    assert (
        recall["n"] == len(answered)
        and 0.0 <= recall["mean"] <= 1.0
        and recall["low"] <= recall["mean"] <= recall["high"]
    )
    # Gold support on citations agrees with the stored per-query figures.
    per_query = gold["per_query"]
    for a in answered:
        supported = sum(any(c.gold_support for c in cl.citations.all()) for cl in a.claims.all())
        assert per_query[a.query.external_id]["citation_recall"] == pytest.approx(supported / a.claims.count())
    assert set(run.summary["latency"]) == {"retrieve", "rerank", "generate", "total"}


def test_threshold_makes_every_query_abstain(indexed) -> None:  # type: ignore[no-untyped-def]
    run = _run(indexed, abstain_threshold=1.0)  # nothing is as similar as 1.0... except an exact duplicate
    counts = run.summary["counts"]
    assert counts["abstained"] >= 9 and AnswerCitation.objects.filter(claim__answer__run=run).count() <= 2


def test_a_backend_that_is_down_fails_per_query_and_the_run_survives(indexed) -> None:  # type: ignore[no-untyped-def]
    run = _run(
        indexed, abstain_threshold=-1.0, backend="openai-compatible",
        backend_settings={"base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout_s": 2},
    )  # fmt: skip
    assert run.is_complete and run.summary["counts"]["failed"] == 10
    answer = run.answers.first()
    assert answer.error_kind == "down" and "cannot be reached" in answer.error and answer.retrieved.count() == 5
    assert any("have no answer" in n for n in run.notes)
    with pytest.raises(WorkbenchError, match="nothing to review"):
        services.answer_review_record(answer=answer, reviewer=run.created_by, **review_payload(answer))


def test_a_model_path_that_is_not_a_model(indexed, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WorkbenchError, match="not a model directory"):
        _run(indexed, backend="hf-local", backend_settings={"model_path": str(tmp_path)})
    with pytest.raises(WorkbenchError, match="not a directory"):
        _run(indexed, backend="hf-local", backend_settings={"model_path": str(tmp_path / "nope")})


def test_the_job_runs_in_the_background(indexed, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, configuration = indexed
    with django_capture_on_commit_callbacks(execute=True):
        run = services.answer_run_start(project=project, user=lead, configuration=configuration, tag=None)
    job = Job.objects.get(pk=run.job_id)
    assert job.status == "succeeded", (job.message, job.log_tail)
    run.refresh_from_db()
    assert run.is_complete and run.answers.count() == 20


@pytest.mark.django_db
def test_review_record_validates_replaces_and_feeds_the_figures() -> None:
    project = make_project(rev=Role.REVIEWER, rev2=Role.REVIEWER)
    rev = project.memberships.get(user__username="rev").user
    run = make_finished_answer_run(project, answers=2)
    answer = run.answers.first()
    payload = review_payload(answer)
    bad = {**payload, "claims": {}}
    with pytest.raises(WorkbenchError, match="Label every claim"):
        services.answer_review_record(answer=answer, reviewer=rev, **bad)
    other = run.answers.last().retrieved.first().pk
    wrong_by = {**payload, "claims": {k: ("supported", other) for k in payload["claims"]}}
    with pytest.raises(WorkbenchError, match="Supported by"):
        services.answer_review_record(answer=answer, reviewer=rev, **wrong_by)
    with pytest.raises(WorkbenchError, match="Usefulness"):
        services.answer_review_record(answer=answer, reviewer=rev, **{**payload, "usefulness": 6})
    services.answer_review_record(answer=answer, reviewer=rev, **payload)
    services.answer_review_record(
        answer=answer, reviewer=rev, **review_payload(answer, label="unsupported", verdict="irrelevant")
    )
    assert AnswerReview.objects.filter(answer=answer).count() == 1
    assert ClaimReview.objects.get(review__answer=answer).label == "unsupported"
    human = selectors.human_summary(run)
    m = human["slices"]["all"]["metrics"]
    assert (
        human["slices"]["all"]["n"] == 1 and m["hallucination"]["mean"] == 1.0 and m["citation_recall"]["mean"] == 0.0
    )
    # The queue moves on: the reviewed answer is not offered again.
    assert selectors.review_next(run, rev).pk == run.answers.last().pk


@pytest.mark.django_db
def test_overlap_agreement_and_adjudication() -> None:
    project = make_project(r1=Role.REVIEWER, r2=Role.REVIEWER, lead=Role.ML_LEAD)
    r1, r2, lead = (project.memberships.get(user__username=n).user for n in ("r1", "r2", "lead"))
    run = make_finished_answer_run(project, answers=2, overlap=2)
    a1, a2 = run.answers.all()
    for a in (a1, a2):
        services.answer_review_record(answer=a, reviewer=r1, **review_payload(a))
    assert selectors.review_next(run, r1) is None and selectors.review_next(run, r2).pk == a1.pk
    services.answer_review_record(answer=a1, reviewer=r2, **review_payload(a1))
    services.answer_review_record(answer=a2, reviewer=r2, **review_payload(a2, label="contradicted", verdict="wrong"))
    assert selectors.review_next(run, make_user("r3")) is None  # both answers have their two reviews
    agree = selectors.review_agreement(run)
    assert agree["claims"]["n"] == 2 and agree["claims"]["disagreements"] == 1 and agree["disputed"] == [a2.pk]
    services.answer_review_record(
        answer=a2, reviewer=lead, adjudication=True, **review_payload(a2, label="contradicted")
    )
    assert selectors.review_agreement(run)["disputed"] == []
    assert selectors.final_reviews(run)[a2.pk].kind == "adjudication"
    with pytest.raises(WorkbenchError, match="already adjudicated"):
        services.answer_review_record(answer=a2, reviewer=r1, adjudication=True, **review_payload(a2))


@pytest.mark.django_db
def test_database_constraints_hold_without_the_service() -> None:
    project = make_project(rev=Role.REVIEWER)
    rev = project.memberships.get(user__username="rev").user
    answer = make_finished_answer_run(project, answers=1).answers.first()
    AnswerReview.objects.create(
        answer=answer, reviewer=rev, hallucination=False, should_have_abstained=False, usefulness=3
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        AnswerReview.objects.create(
            answer=answer, reviewer=rev, hallucination=True, should_have_abstained=False, usefulness=3
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        AnswerReview.objects.create(
            answer=answer, reviewer=make_user(), hallucination=True, should_have_abstained=False, usefulness=9
        )


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_saving_at_once() -> None:
    project = make_project(r1=Role.REVIEWER, r2=Role.REVIEWER)
    r1, r2 = (project.memberships.get(user__username=n).user for n in ("r1", "r2"))
    answer = make_finished_answer_run(project, answers=1, overlap=2).answers.first()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def save(user, label):  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            services.answer_review_record(answer=answer, reviewer=user, **review_payload(answer, label=label))
        except WorkbenchError:
            pass  # "saved at the same moment": a readable refusal is fine, a duplicate or a 500 is not
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(u, lab)) for u, lab in
               [(r1, "supported"), (r2, "unsupported"), (r1, "partial"), (r2, "supported")]]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    reviews = AnswerReview.objects.filter(answer=answer)
    assert sorted(r.reviewer.username for r in reviews) == ["r1", "r2"]  # one each, never two for one reviewer
    for r in reviews:
        assert r.claim_reviews.count() == answer.claims.count()  # each review complete, none half-replaced


@pytest.mark.django_db
def test_flag_pairs_for_labeling_idempotent_and_exported(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(rev=Role.REVIEWER)
    rev = project.memberships.get(user__username="rev").user
    run = make_finished_answer_run(project, answers=1)
    answer = run.answers.first()
    retrieved = answer.retrieved.get(number=2)
    flag, created = services.answer_flag_create(answer=answer, retrieved=retrieved, target="judging", user=rev)
    again, created_again = services.answer_flag_create(answer=answer, retrieved=retrieved, target="judging", user=rev)
    assert created and not created_again and flag.pk == again.pk
    services.answer_flag_create(answer=answer, retrieved=retrieved, target="audit", user=rev)
    assert AnswerFlag.objects.count() == 2
    assert selectors.flags_open(project, target="audit") == [(answer.query.external_id, retrieved.doc_external_id)]
    client.force_login(rev)
    url = f"/p/{project.slug}/answers/flags/"
    csv_text = client.get(url, {"format": "csv", "target": "judging"}).content.decode()
    assert csv_text.splitlines()[0].startswith("query_id,query,doc_id") and len(csv_text.splitlines()) == 2
    tsv = client.get(url, {"format": "beir"}).content.decode().splitlines()
    assert (
        tsv[0] == "query-id\tcorpus-id\tscore"
        and tsv[1] == f"{answer.query.external_id}\t{retrieved.doc_external_id}\t0"
    )
    other = make_finished_answer_run(project, answers=1).answers.first()
    with pytest.raises(WorkbenchError):
        services.answer_flag_create(answer=other, retrieved=retrieved, target="judging", user=rev)


@pytest.mark.django_db
def test_auto_judge_labels_claims_and_is_calibrated(tiny_cross_encoder_path) -> None:  # type: ignore[no-untyped-def]
    project = make_project(rev=Role.REVIEWER)
    rev = project.memberships.get(user__username="rev").user
    run = make_finished_answer_run(project, answers=3)
    for a in run.answers.all():
        services.answer_review_record(answer=a, reviewer=rev, **review_payload(a))
    params = {"judge": "cross-encoder", "path": str(tiny_cross_encoder_path)}
    services.auto_judge_execute(run=run, params=params)
    services.auto_judge_execute(run=run, params=params)  # re-running replaces, never duplicates
    assert AutoSupport.objects.filter(run=run).count() == 3
    (judge,) = selectors.auto_judges(run)
    cal = judge["calibration"]
    assert judge["claims"] == 3 and cal["n"] + judge["undetermined"] == 3
    assert not cal["usable"]  # 3 claims are never enough to trust a judge
    with pytest.raises(WorkbenchError):
        services.auto_judge_start(run=run, user=rev, judge="nli", path="/nonexistent")


@pytest.mark.django_db
def test_pages_render_and_escape(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(rev=Role.REVIEWER)
    rev = project.memberships.get(user__username="rev").user
    run = make_finished_answer_run(project, answers=2)
    client.force_login(rev)
    base = f"/p/{project.slug}/answers/"
    for url in (base, f"{base}{run.pk}/", f"{base}{run.pk}/review/", f"{base}flags/", f"{base}compare/",
                f"{base}{run.pk}/a/{run.answers.first().pk}/"):  # fmt: skip
        html = client.get(url).content.decode()
        assert "<script>." not in html and "<b>0</b>" not in html, url
    answer = run.answers.first()
    form = {"answer": answer.pk, "hallucination": "no", "should_abstain": "no", "usefulness": "5", "shown_at": "0"}
    for claim in answer.claims.all():
        form[f"claim_{claim.pk}"] = "supported"
        for c in claim.citations.all():
            form[f"cit_{c.pk}"] = "correct"
    response = client.post(f"{base}{run.pk}/review/", form)
    assert response.status_code == 302
    assert AnswerReview.objects.get(answer=answer).usefulness == 5
    missing = client.post(f"{base}{run.pk}/review/", {"answer": run.answers.last().pk, "hallucination": "no"})
    assert missing.status_code == 400
    compare = client.get(f"{base}compare/", {"a": run.pk, "b": run.pk, "source": "human"}).content.decode()
    assert "Citation recall" in compare


@pytest.mark.django_db
def test_flag_view_plain_form_and_no_open_redirect(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(rev=Role.REVIEWER)
    run = make_finished_answer_run(project, answers=1)
    answer = run.answers.first()
    client.force_login(project.memberships.get(user__username="rev").user)
    url = f"/p/{project.slug}/answers/{run.pk}/flag/"
    data = {"answer": answer.pk, "retrieved": answer.retrieved.first().pk, "target": "audit"}
    response = client.post(url, {**data, "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == f"/p/{project.slug}/answers/flags/"
    assert AnswerFlag.objects.get().target == "audit"
    htmx = client.post(url, data, HTTP_HX_REQUEST="true")
    assert "Already sent" in htmx.content.decode()
    assert client.post(url, {**data, "target": "nope"}).status_code == 400


@pytest.mark.django_db
def test_an_uncalibrated_judge_cannot_feed_a_comparison_and_a_calibrated_one_can(settings) -> None:  # type: ignore[no-untyped-def]
    project = make_project(rev=Role.REVIEWER)
    rev = project.memberships.get(user__username="rev").user
    a, b = make_finished_answer_run(project, answers=4), make_finished_answer_run(project, answers=4)
    for run in (a, b):
        for i, answer in enumerate(run.answers.order_by("position")):
            label = "supported" if i % 2 else "unsupported"
            services.answer_review_record(answer=answer, reviewer=rev, **review_payload(answer, label=label))
            claim = answer.claims.get()
            # The judge agrees with the reviewers everywhere but once per run; one output is undetermined.
            auto = label if i != 3 else ("unsupported" if label == "supported" else "supported")
            AutoSupport.objects.create(run=run, claim=claim, judge="j", label=None if i == 0 else auto)
    with pytest.raises(WorkbenchError, match="not calibrated"):
        selectors.comparison(a, b, source="auto", judge="j")  # 3 claims < 30
    settings.ANSWER_JUDGE_MIN_ITEMS = 3
    settings.ANSWER_JUDGE_MIN_KAPPA = 0.9
    with pytest.raises(WorkbenchError, match=r"below 0\.9"):
        selectors.comparison(a, b, source="auto", judge="j")
    settings.ANSWER_JUDGE_MIN_KAPPA = -1.0
    figures = selectors.auto_figures(a, "j")
    assert figures["calibration"]["undetermined"] == 1 and figures["calibration"]["n"] == 3
    assert figures["slices"]["all"]["undetermined_claims"] == 1
    cells = selectors.comparison(a, b, source="auto", judge="j")["cells"]
    assert {c["metric"] for c in cells} >= {"faithfulness", "hallucination"}


@pytest.mark.django_db
def test_ml_lead_starts_a_run_from_the_form(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    configuration = make_finished_answer_run(project, answers=1).configuration
    client.force_login(project.memberships.get(user__username="lead").user)
    url = f"/p/{project.slug}/answers/new/"
    form = {
        "configuration": configuration.pk, "query_set": "", "backend": "openai-compatible",
        "citation_policy": "each-claim", "abstain_threshold": "0.4", "passages_k": "5", "review_overlap": "2",
        "gold": "", "base_url": "http://127.0.0.1:8000/v1", "model": "m", "api_key_env": "MY_KEY", "timeout_s": "10",
    }  # fmt: skip
    response = client.post(url, form)
    assert response.status_code == 302, re.findall(r'class="error[^>]*>(.*?)<', response.content.decode(), re.S)
    run = project.answer_runs.order_by("-id").first()
    assert run.backend_settings["api_key_env"] == "MY_KEY" and "sk-" not in str(run.backend_settings)
    assert run.job.kind == "answer_run" and run.review_overlap == 2
    bad = client.post(url, {**form, "base_url": "ftp://x"})
    assert bad.status_code == 200 and "must start with http" in bad.content.decode()


def test_hf_local_prompt_over_the_context_is_a_failure_per_query(indexed, tiny_lm) -> None:  # type: ignore[no-untyped-def]
    run = _run(indexed, abstain_threshold=-1.0, backend="hf-local", passages_k=8,
               backend_settings={"model_path": str(tiny_lm), "max_new_tokens": 4})  # fmt: skip
    kinds = set(run.answers.values_list("error_kind", flat=True))
    assert run.is_complete and kinds <= {"context", ""} and "context" in kinds
    assert run.summary["failures"]["context"] == run.summary["counts"]["failed"] > 0


def test_answers_read_the_sentence_vectors_the_index_stored(indexed, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, configuration = indexed
    index = configuration.index
    assert index.manifest["sentence_count"] > 0
    with django_capture_on_commit_callbacks(execute=True):
        run = services.answer_run_start(project=project, user=lead, configuration=configuration, tag=None)
    log = Job.objects.get(pk=run.job_id).log_tail
    assert f"{index.manifest['sentence_count']:,} sentence vectors stored by the index" in log
    stored = int(re.search(r"sentences scored: ([\d,]+) from the index, 0 embedded here", log)[1].replace(",", ""))
    run.refresh_from_db()
    assert stored > 0 and run.summary["sentences"] == {"from_index": stored, "embedded": 0}


def test_an_index_without_sentence_vectors_still_answers(indexed, django_capture_on_commit_callbacks, client) -> None:  # type: ignore[no-untyped-def]
    from workbench.models import IndexVersion
    from workbench.services import indexes

    project, lead, configuration = indexed
    index = configuration.index
    with django_capture_on_commit_callbacks(execute=True):
        indexes.index_build_start(
            project=project, corpus=index.corpus, encoder=index.encoder, index_type="flat", params={}, user=lead,
            answer_sentences=False,
        )  # fmt: skip
    plain = IndexVersion.objects.get(corpus=index.corpus, number=2)
    assert plain.manifest["sentence_count"] is None
    draft = search_configuration_draft(project=project, index=plain, mode="hybrid")
    draft.name = "no sentence vectors"
    other = search_configuration_create(configuration=draft, user=lead)
    stored, live = ({a.query_id: a for a in r.answers.all()} for r in (_run(indexed), _run((project, lead, other))))
    assert stored.keys() == live.keys() and len(live) == 10
    # Float16 vectors score as embedding per answer does, to their precision; near ties may pick another sentence.
    for qid, a in live.items():
        assert stored[qid].confidence == pytest.approx(a.confidence, abs=5e-3)
    assert sum(stored[qid].text == a.text for qid, a in live.items()) >= 8
    plain_run = AnswerRun.objects.filter(configuration=other).get()
    assert plain_run.summary["sentences"]["from_index"] == 0 and plain_run.summary["sentences"]["embedded"] > 0
    client.force_login(lead)
    shown = {
        r.pk: client.get(f"/p/{project.slug}/answers/{r.pk}/").content.decode()
        for r in AnswerRun.objects.filter(project=project)
    }
    assert "Store answer sentences</em> makes that a lookup" in shown[plain_run.pk]
    assert all("0 embedded per answer." in html for pk, html in shown.items() if pk != plain_run.pk)
