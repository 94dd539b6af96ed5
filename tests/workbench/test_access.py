"""Every project URL, walked with every role: outsiders get 404, members without the role 403, anonymous a login."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import get_resolver, reverse

from labeling.models import LabelSnapshot
from releases.models import Release
from tests.answers.factories import make_finished_answer_run
from tests.evaluation.factories import make_finished_eval
from tests.factories import PASSWORD, make_corpus, make_project, make_snapshot, make_user
from training.models import TrainingRun
from workbench.models import Document, IndexVersion, Job, Membership, ModelVersion, Role, SearchConfiguration
from workbench.roles import ROLES_FOR, Capability

pytestmark = pytest.mark.django_db

# url name -> (capability, method). Every project-scoped URL must be listed (a test checks it).
URLS: dict[str, tuple[Capability, str]] = {
    "workbench:project": (Capability.VIEW, "get"),
    "workbench:members": (Capability.MANAGE_MEMBERS, "get"),
    "workbench:member_remove": (Capability.MANAGE_MEMBERS, "post"),
    "workbench:grade_scale": (Capability.MANAGE_DATA, "get"),
    "workbench:corpus_new": (Capability.MANAGE_DATA, "get"),
    "workbench:corpus": (Capability.VIEW, "get"),
    "workbench:corpus_upload": (Capability.MANAGE_DATA, "post"),
    "workbench:corpus_delete": (Capability.MANAGE_DATA, "post"),
    "workbench:document": (Capability.VIEW, "get"),
    "workbench:queries": (Capability.VIEW, "get"),
    "workbench:query_detail": (Capability.VIEW, "get"),
    "workbench:queries_import": (Capability.MANAGE_DATA, "post"),
    "workbench:qrels_import": (Capability.MANAGE_DATA, "post"),
    "workbench:export": (Capability.MANAGE_DATA, "get"),
    "workbench:jobs": (Capability.VIEW, "get"),
    "workbench:job": (Capability.VIEW, "get"),
    "workbench:job_cancel": (Capability.RUN_JOBS, "post"),
    "workbench:job_retry": (Capability.RUN_JOBS, "post"),
    "workbench:models": (Capability.VIEW, "get"),
    "workbench:model": (Capability.VIEW, "get"),
    "workbench:model_measure": (Capability.RUN_JOBS, "post"),
    "workbench:indexes": (Capability.VIEW, "get"),
    "workbench:index": (Capability.VIEW, "get"),
    "workbench:index_delete": (Capability.RUN_JOBS, "post"),
    "workbench:search": (Capability.SEARCH, "get"),
    "workbench:configurations": (Capability.VIEW, "get"),
    "workbench:configuration_serve": (Capability.RUN_JOBS, "post"),
    "workbench:configuration_delete": (Capability.RUN_JOBS, "post"),
    "workbench:latency": (Capability.VIEW, "get"),
    "api:search": (Capability.SEARCH, "get"),
    "api:indexes": (Capability.VIEW, "get"),
    "api:models": (Capability.VIEW, "get"),
    "api:jobs": (Capability.VIEW, "get"),
    "api:job": (Capability.VIEW, "get"),
    "releases:list": (Capability.VIEW, "get"),
    "releases:new": (Capability.RUN_JOBS, "get"),
    "releases:policy": (Capability.RUN_JOBS, "get"),
    "releases:audit": (Capability.VIEW, "get"),
    "releases:rollback": (Capability.RUN_JOBS, "post"),
    "releases:detail": (Capability.VIEW, "get"),
    "releases:approve": (Capability.RUN_JOBS, "post"),
    "releases:reject": (Capability.RUN_JOBS, "post"),
    "releases:activate": (Capability.RUN_JOBS, "post"),
    "releases:traffic": (Capability.RUN_JOBS, "post"),
    "releases:gates": (Capability.RUN_JOBS, "post"),
    "releases:auto_rollback": (Capability.RUN_JOBS, "post"),
    "evaluation:list": (Capability.VIEW, "get"),
    "evaluation:new": (Capability.RUN_JOBS, "get"),
    "evaluation:compare": (Capability.VIEW, "get"),
    "evaluation:against_served": (Capability.RUN_JOBS, "post"),
    "evaluation:detail": (Capability.VIEW, "get"),
    "evaluation:query": (Capability.VIEW, "get"),
    "evaluation:report_json": (Capability.VIEW, "get"),
    "evaluation:report_csv": (Capability.VIEW, "get"),
    "evaluation:unjudged_csv": (Capability.VIEW, "get"),
    "evaluation:run_file": (Capability.VIEW, "get"),
    "labeling:campaigns": (Capability.VIEW, "get"),
    "labeling:campaign_new": (Capability.RUN_JOBS, "get"),
    "labeling:campaign": (Capability.VIEW, "get"),
    "labeling:campaign_pool": (Capability.RUN_JOBS, "post"),
    "labeling:campaign_guidelines": (Capability.RUN_JOBS, "post"),
    "labeling:campaign_aggregate": (Capability.RUN_JOBS, "post"),
    "labeling:campaign_status": (Capability.RUN_JOBS, "post"),
    "labeling:campaign_autojudge": (Capability.RUN_JOBS, "post"),
    "labeling:campaign_reassign": (Capability.RUN_JOBS, "post"),
    "labeling:agreement": (Capability.VIEW, "get"),
    "labeling:judge": (Capability.JUDGE, "get"),
    "labeling:judge_submit": (Capability.JUDGE, "post"),
    "labeling:judge_undo": (Capability.JUDGE, "post"),
    "labeling:judge_query": (Capability.JUDGE, "get"),
    "labeling:my_judgments": (Capability.JUDGE, "get"),
    "labeling:adjudicate": (Capability.REVIEW, "get"),
    "labeling:adjudicate_item": (Capability.REVIEW, "get"),
    "labeling:snapshots": (Capability.VIEW, "get"),
    "labeling:snapshot_new": (Capability.RUN_JOBS, "get"),
    "labeling:snapshot": (Capability.VIEW, "get"),
    "labeling:snapshot_export": (Capability.VIEW, "get"),
    "labeling:mining": (Capability.VIEW, "get"),
    "labeling:mining_new": (Capability.RUN_JOBS, "get"),
    "labeling:audit": (Capability.JUDGE, "get"),
    "labeling:audit_submit": (Capability.JUDGE, "post"),
    "evaluation:answers_list": (Capability.VIEW, "get"),
    "evaluation:answers_new": (Capability.RUN_JOBS, "get"),
    "evaluation:answers_compare": (Capability.VIEW, "get"),
    "evaluation:answers_flags": (Capability.VIEW, "get"),
    "evaluation:answers_detail": (Capability.VIEW, "get"),
    "evaluation:answers_answer": (Capability.VIEW, "get"),
    "evaluation:answers_review": (Capability.REVIEW, "get"),
    "evaluation:answers_flag": (Capability.REVIEW, "post"),
    "evaluation:answers_judge": (Capability.RUN_JOBS, "post"),
    "training:list": (Capability.VIEW, "get"),
    "training:new": (Capability.RUN_JOBS, "get"),
    "training:run": (Capability.VIEW, "get"),
    "training:run_status": (Capability.VIEW, "get"),
    "training:run_index": (Capability.RUN_JOBS, "post"),
    "training:run_configure": (Capability.RUN_JOBS, "post"),
}


def labeling_world(project, corpus, *, index_for):  # type: ignore[no-untyped-def]
    """A campaign with one pool item (assigned to the annotator), a snapshot and a mined candidate."""
    from labeling.models import Assignment, AuditItem, Campaign, GuidelineVersion, MiningRun, PoolItem

    doc = Document.objects.create(corpus=corpus, external_id="lab-doc", text="some text", content_hash="x")
    query = project.queries.create(external_id="lab-q", text="a query")
    index = IndexVersion.objects.create(
        project=project, corpus=corpus, corpus_version=0, encoder=index_for, number=900, index_type="flat",
        path="/nonexistent", passage_count=0, build_seconds=0.0,
    )  # fmt: skip
    config = SearchConfiguration.objects.create(project=project, name="lab-config", index=index, mode="bm25")
    snapshot = LabelSnapshot.objects.create(
        project=project, corpus=corpus, corpus_version=0, name="lab-snap", source="gold", content_hash="h",
        relevance_threshold=1, grade_min=0, grade_max=3,
    )  # fmt: skip
    run = MiningRun.objects.create(project=project, snapshot=snapshot, configuration=config, params={})
    audit_item = AuditItem.objects.create(run=run, query=query, document=doc, score=0.5)

    def targets() -> dict:
        campaign = Campaign.objects.create(
            project=project, corpus=corpus, name=f"lab-c{Campaign.objects.count()}", status="open"
        )
        campaign.configurations.set([config])
        GuidelineVersion.objects.create(campaign=campaign, number=1, text="", content_hash="-")
        item = PoolItem.objects.create(campaign=campaign, query=query, document=doc)
        for member in project.memberships.all():
            Assignment.objects.create(item=item, campaign=campaign, annotator=member.user, order_key=str(member.pk))
        a = {"pk": campaign.pk}
        return {
            **{f"labeling:{n}": a for n in ("campaign", "campaign_pool", "campaign_guidelines", "campaign_aggregate",
                                            "campaign_status", "campaign_autojudge", "campaign_reassign", "agreement",
                                            "judge", "my_judgments", "adjudicate")},
            "labeling:judge_submit": {**a, "assignment_pk": Assignment.objects.filter(item=item).first().pk},
            "labeling:judge_undo": {**a, "assignment_pk": Assignment.objects.filter(item=item).first().pk},
            "labeling:adjudicate_item": {**a, "item_pk": item.pk},
            "labeling:judge_query": {**a, "query_pk": query.pk},
            "labeling:snapshot": {"pk": snapshot.pk},
            "labeling:snapshot_export": {"pk": snapshot.pk},
            "labeling:audit_submit": {"item_pk": audit_item.pk},
        }  # fmt: skip

    return targets


def project_url_names() -> set[str]:
    names = set()

    def walk(resolver, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for p in resolver.url_patterns:
            if hasattr(p, "url_patterns"):
                ns = f"{prefix}{p.namespace}:" if p.namespace else prefix
                walk(p, ns)
            elif p.name and "<slug:slug>" in str(p.pattern):
                names.add(prefix + p.name)

    walk(get_resolver(), "")
    return names


def test_every_project_url_is_in_the_table() -> None:
    assert project_url_names() <= set(URLS), project_url_names() - set(URLS)


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    project = make_project(**{f"u_{r}": r for r in Role.values})
    other = make_project(owner_other=Role.ADMIN)
    corpus = make_corpus(project)
    encoder = ModelVersion.objects.create(
        project=project, name="enc", kind="bi_encoder", source="registered", path="/x"
    )
    make_user("outsider")
    labeling_targets = labeling_world(project, corpus, index_for=encoder)
    evaluation = make_finished_eval(project)  # read-only pages: one finished evaluation serves every caller
    eval_config = evaluation.configs.first()
    eval_query = project.queries.get(external_id=eval_config.results["metrics"]["qids"][0])
    answer_run = make_finished_answer_run(project, answers=1)
    answer = answer_run.answers.first()
    snapshot = make_snapshot(project, corpus)
    training_run = TrainingRun.objects.create(
        project=project, name="run", snapshot=snapshot, kind="bi_encoder", base=encoder,
        job=Job.objects.create(project=project, kind="training_run", title="t", status="succeeded"),
    )  # fmt: skip

    def targets() -> dict:
        """Fresh objects for each caller: allowed deletes must not leave the next role a 404."""
        doc = Document.objects.create(
            corpus=corpus, external_id=f"d{Document.objects.count()}", text="t", content_hash="x"
        )
        job = Job.objects.create(project=project, kind="import_corpus", title="t")
        index = IndexVersion.objects.create(
            project=project, corpus=corpus, corpus_version=0, encoder=encoder, number=IndexVersion.objects.count() + 1,
            index_type="flat", path="/nonexistent", passage_count=0, build_seconds=0.0,
        )  # fmt: skip
        victim = Membership.objects.create(project=project, user=make_user(), role=Role.ANNOTATOR)
        configuration = SearchConfiguration.objects.create(
            project=project, name=f"c{SearchConfiguration.objects.count()}", index=index, mode="bm25"
        )
        doomed = make_corpus(project, name=f"doomed {Job.objects.count()}")
        release = Release.objects.create(
            project=project, number=Release.objects.count() + 1, name="r", configuration=configuration
        )
        number = {"number": release.number}
        return {
            **{name: number for name in ("approve", "reject", "activate", "traffic", "gates", "auto_rollback")},
            "configuration_serve": {"pk": configuration.pk},
            "configuration_delete": {"pk": configuration.pk},
            "corpus": {"pk": corpus.pk},
            "corpus_upload": {"pk": corpus.pk},
            "corpus_delete": {"pk": doomed.pk},
            "document": {"pk": doc.pk},
            "job": {"pk": job.pk},
            "job_cancel": {"pk": job.pk},
            "job_retry": {"pk": job.pk},
            "member_remove": {"pk": victim.pk},
            "index": {"pk": index.pk},
            "model": {"pk": encoder.pk},
            "model_measure": {"pk": encoder.pk},
            "index_delete": {"pk": index.pk},
            "detail": {"pk": evaluation.pk},
            "releases:detail": number,
            "query": {"pk": evaluation.pk, "query_pk": eval_query.pk},
            "query_detail": {"pk": eval_query.pk},
            "report_json": {"pk": evaluation.pk},
            "report_csv": {"pk": evaluation.pk},
            "unjudged_csv": {"pk": evaluation.pk},
            "run_file": {"pk": evaluation.pk, "config_pk": eval_config.pk},
            **labeling_targets(),
            "answers_detail": {"pk": answer_run.pk},
            "answers_answer": {"pk": answer_run.pk, "answer_pk": answer.pk},
            "answers_review": {"pk": answer_run.pk},
            "answers_flag": {"pk": answer_run.pk},
            "answers_judge": {"pk": answer_run.pk},
            "run": {"pk": training_run.pk},
            "run_status": {"pk": training_run.pk},
            "run_index": {"pk": training_run.pk},
            "run_configure": {"pk": training_run.pk},
        }

    return project, other, targets


def _request(client: Client, name: str, method: str, slug: str, extra: dict) -> int:
    # Targets are named by the URL's short name, or by its full name where two apps share a short name.
    url = reverse(name, kwargs={"slug": slug, **extra.get(name, extra.get(name.split(":")[1], {}))})
    return (client.post(url) if method == "post" else client.get(url)).status_code


@pytest.mark.parametrize("name", sorted(URLS))
def test_url_access_by_role(world, name: str) -> None:  # type: ignore[no-untyped-def]
    project, _, targets = world
    capability, method = URLS[name]
    for role in Role.values:
        client = Client()
        client.login(username=f"u_{role}", password=PASSWORD)
        status = _request(client, name, method, project.slug, targets())
        if role in ROLES_FOR[capability]:
            assert status in (200, 302, 400), (name, role, status)  # 400: allowed, but no query given
        else:
            assert status == 403, (name, role, status)
    outsider = Client()
    outsider.login(username="outsider", password=PASSWORD)
    assert _request(outsider, name, method, project.slug, targets()) == 404
    anonymous = _request(Client(), name, method, project.slug, targets())
    assert anonymous == (401 if name.startswith("api:") else 302)


def test_objects_of_another_project_are_404_even_for_its_admin(world) -> None:  # type: ignore[no-untyped-def]
    _, other, targets = world
    client = Client()
    client.login(username="owner_other", password=PASSWORD)
    # The admin of `other` asks for `project`'s document through their own project's URL: no id probing.
    url = reverse("workbench:document", kwargs={"slug": other.slug, "pk": targets()["document"]["pk"]})
    assert client.get(url).status_code == 404


def test_home_lists_only_own_projects(world) -> None:  # type: ignore[no-untyped-def]
    project, other, _ = world
    client = Client()
    client.login(username="u_annotator", password=PASSWORD)
    html = client.get(reverse("workbench:home")).content.decode()
    assert project.name in html and other.name not in html


def test_only_staff_create_projects(world) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.login(username="u_admin", password=PASSWORD)
    assert client.post(reverse("workbench:home"), {"name": "New"}).status_code == 403
    staff = make_user("staffer", is_staff=True)
    client.force_login(staff)
    response = client.post(reverse("workbench:home"), {"name": "Brand new"})
    assert response.status_code == 302 and Membership.objects.get(user=staff).role == Role.ADMIN


def test_forms_need_csrf(world) -> None:  # type: ignore[no-untyped-def]
    project, _, _ = world
    client = Client(enforce_csrf_checks=True)
    client.login(username="u_admin", password=PASSWORD)
    assert client.post(reverse("workbench:members", kwargs={"slug": project.slug}), {}).status_code == 403
