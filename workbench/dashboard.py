"""The project dashboard: the loop's stages, what exists at each, and the next action for the viewer's role.

Each stage is a function of (project, role) returning a ``Stage``; stages are registered with ``dashboard_stage``.
The core registers its own (corpus, queries and judgments, indexes, search configurations) and placeholders for the
stages other apps own (judging, training, releases); an app above the core registers its stage under the same key
in its ``AppConfig.ready`` and replaces the placeholder, so the core never imports upwards. Read-only: building a
dashboard never writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count
from django.urls import reverse

from workbench.models import (
    Corpus,
    IndexVersion,
    Job,
    Judgment,
    Project,
    Query,
    SearchConfiguration,
    ServingRecord,
)
from workbench.roles import Capability, role_allows


@dataclass
class Action:
    label: str
    url: str
    primary: bool = True


@dataclass
class Stage:
    """One stage of the loop as the dashboard shows it.

    ``state``: "done" (something exists), "todo" (nothing yet, and it can be done now), "waiting" (an earlier stage
    must come first), "running" (a job is building it) or "unavailable" (the feature does not exist yet).
    ``actions`` are only those the viewer's role may take; ``hint`` tells the others who can.
    """

    key: str
    title: str
    state: str
    lines: list[str] = field(default_factory=list)
    entries: list[tuple[str, str, str]] = field(default_factory=list)  # (name, url, detail): what exists, linked
    link: Action | None = None
    actions: list[Action] = field(default_factory=list)
    hint: str = ""

    @property
    def next_action(self) -> Action | None:
        return self.actions[0] if self.state == "todo" and self.actions else None


StageBuilder = Callable[[Project, "str | None"], Stage]
_STAGES: dict[str, tuple[int, int, StageBuilder]] = {}


def dashboard_stage(key: str, *, order: int, priority: int | None = None) -> Callable[[StageBuilder], StageBuilder]:
    """Register (or replace) the builder of one dashboard stage; ``order`` places it in the loop, ``priority``
    (default: ``order``) among the candidates for the one "next step" (lowest first)."""

    def register(builder: StageBuilder) -> StageBuilder:
        _STAGES[key] = (order, order if priority is None else priority, builder)
        return builder

    return register


QueryActionBuilder = Callable[[Project, Query, "str | None"], "Action | None"]
_QUERY_ACTIONS: dict[str, QueryActionBuilder] = {}


def query_action(key: str) -> Callable[[QueryActionBuilder], QueryActionBuilder]:
    """Register what an app above the core offers on a query's page (e.g. labeling's "Send to judging"): the core
    page shows the actions without importing the apps."""

    def register(builder: QueryActionBuilder) -> QueryActionBuilder:
        _QUERY_ACTIONS[key] = builder
        return builder

    return register


def query_actions(project: Project, query: Query, role: str | None) -> list[Action]:
    return [a for _, builder in sorted(_QUERY_ACTIONS.items()) if (a := builder(project, query, role)) is not None]


def project_dashboard(project: Project, role: str | None) -> dict:
    """The stages in loop order and the one next step for this role: of the stages with an action it can take
    now, the one of lowest priority (a corpus, then an index and what is served, then judgments, ...)."""
    entries = sorted(_STAGES.values(), key=lambda item: item[0])
    built = [(priority, builder(project, role)) for _, priority, builder in entries]
    candidates = sorted((p, i) for i, (p, s) in enumerate(built) if s.next_action is not None)
    next_stage = built[candidates[0][1]][1] if candidates else None
    return {"stages": [s for _, s in built], "next_stage": next_stage}


def _url(name: str, project: Project, **kwargs: int) -> str:
    return reverse(name, kwargs={"slug": project.slug, **kwargs})


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _can(role: str | None, capability: Capability) -> bool:
    return role_allows(role, capability)


LEAD = "An ML lead or admin of this project can do this."


@dashboard_stage("corpus", order=10)
def corpus_stage(project: Project, role: str | None) -> Stage:
    corpora = list(Corpus.objects.filter(project=project).annotate(n=Count("documents")).order_by("name")[:6])
    stage = Stage("corpus", "Corpus", "done" if corpora else "todo")
    for c in corpora:
        stage.entries.append(
            (c.name, _url("workbench:corpus", project, pk=c.pk), f"{_plural(c.n, 'document')} · version {c.version}")
        )
    if _can(role, Capability.MANAGE_DATA):
        label = "Upload a corpus" if not corpora else "New corpus"
        stage.actions.append(Action(label, _url("workbench:corpus_new", project), primary=not corpora))
    elif not corpora:
        stage.hint = LEAD
    if not corpora:
        stage.lines.append("No documents yet: upload BEIR corpus.jsonl, JSONL, .txt, .md or .html files.")
    return stage


# Search needs no judgments, so importing them comes after an index and a served configuration as the next step.
@dashboard_stage("queries", order=20, priority=65)
def queries_stage(project: Project, role: str | None) -> Stage:
    n_queries = project.queries.count()
    n_judgments = Judgment.objects.filter(project=project).count()
    has_corpus = Corpus.objects.filter(project=project).exists()
    state = "done" if n_queries and n_judgments else ("todo" if has_corpus else "waiting")
    stage = Stage("queries", "Queries", state)
    stage.lines.append(f"{_plural(n_queries, 'query', 'queries')} · {_plural(n_judgments, 'judgment')}")
    stage.lines.append(
        f"Grades {project.grade_min}–{project.grade_max}, relevant from grade {project.relevance_threshold}"
    )
    if n_queries:
        stage.link = Action("Browse queries", _url("workbench:queries", project), False)
    if _can(role, Capability.MANAGE_DATA) and has_corpus and state == "todo":
        stage.actions.append(Action("Import queries and judgments", _url("workbench:queries", project) + "#import"))
    elif state == "todo":
        stage.hint = LEAD
    if state == "waiting":
        stage.lines.append("Judgments need a corpus first.")
    elif state == "todo":
        stage.lines.append("No judged queries yet: evaluations need queries with judgments (queries + qrels files).")
    return stage


@dashboard_stage("labeling", order=30)
def labeling_placeholder(project: Project, role: str | None) -> Stage:
    return Stage(
        "labeling", "Judging", "unavailable", ["Judging campaigns (pools, assignments, agreement): not available yet."]
    )


@dashboard_stage("training", order=40)
def training_placeholder(project: Project, role: str | None) -> Stage:
    return Stage("training", "Training", "unavailable", ["Fine-tuning encoders and rerankers: not available yet."])


@dashboard_stage("indexes", order=50)
def indexes_stage(project: Project, role: str | None) -> Stage:
    indexes = list(IndexVersion.objects.filter(project=project).select_related("corpus", "encoder")[:3])
    n = IndexVersion.objects.filter(project=project).count()
    building = Job.objects.filter(project=project, kind="index_build", status__in=Job.ACTIVE).order_by("-id").first()
    has_passages = Corpus.objects.filter(project=project, passages__isnull=False).exists()
    state = "done" if indexes else ("running" if building else ("todo" if has_passages else "waiting"))
    stage = Stage("indexes", "Indexes", state)
    if indexes:
        stage.lines.append(_plural(n, "index version") + ("; newest:" if n > 1 else ":"))
        newest = indexes[0]
        stage.entries.append(
            (
                f"{newest.corpus.name} v{newest.number}",
                _url("workbench:index", project, pk=newest.pk),
                f"{newest.index_type}, {newest.encoder.name}, {newest.passage_count:,} passages",
            )
        )
        stage.link = Action("All indexes", _url("workbench:indexes", project), False)
    if building:
        stage.lines.append(f"Building: {building.title} ({building.progress_percent} %)")
        stage.link = Action(f"Job #{building.pk}", _url("workbench:job", project, pk=building.pk), False)
    if state == "waiting":
        stage.lines.append("An index needs a corpus with passages.")
    elif state == "todo":
        stage.lines.append("No index yet: nothing can be searched or evaluated.")
        if _can(role, Capability.RUN_JOBS):
            stage.actions.append(Action("Build an index", _url("workbench:indexes", project) + "#build"))
        else:
            stage.hint = LEAD
    elif indexes and _can(role, Capability.RUN_JOBS):
        stage.actions.append(Action("Build another", _url("workbench:indexes", project) + "#build", False))
    return stage


@dashboard_stage("serving", order=60)
def serving_stage(project: Project, role: str | None) -> Stage:
    n_configs = SearchConfiguration.objects.filter(project=project).count()
    record = (
        ServingRecord.objects.filter(project=project)
        .select_related("configuration__index__corpus", "configuration__index__encoder", "configuration__reranker")
        .first()
    )
    has_index = IndexVersion.objects.filter(project=project).exists()
    state = "done" if record else ("todo" if has_index else "waiting")
    stage = Stage("serving", "Serving", state)
    stage.lines.append(_plural(n_configs, "saved search configuration"))
    if record:
        stage.lines.append(f"Served: {record.configuration.name} ({record.configuration.describe()})")
        stage.link = Action("Search", _url("workbench:search", project), False)
    elif has_index:
        stage.lines.append("Nothing is served: the search page and the API answer only once a configuration is.")
        if _can(role, Capability.RUN_JOBS):
            stage.actions.append(Action("Save and serve a configuration", _url("workbench:configurations", project)))
        else:
            stage.hint = LEAD
    else:
        stage.lines.append("A configuration needs an index.")
    return stage


@dashboard_stage("evaluation", order=70)
def evaluation_placeholder(project: Project, role: str | None) -> Stage:
    return Stage("evaluation", "Evaluations", "unavailable", ["Evaluation runs: not available yet."])


@dashboard_stage("releases", order=80)
def releases_placeholder(project: Project, role: str | None) -> Stage:
    return Stage(
        "releases", "Releases", "unavailable", ["Releases with gates, approval and rollback: not available yet."]
    )
