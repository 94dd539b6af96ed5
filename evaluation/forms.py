"""Forms of the evaluation pages. Range checks with a user-facing reason live in the services, not here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms import formset_factory

from evaluation.query_sets import QuerySetChoice, query_set_choices, query_set_parse
from evaluation.services import DEFAULT_DEPTH
from workbench.models import IndexVersion, Project, QueryTag, SearchConfiguration
from workbench.services.configurations import rerankers_offered, search_configuration_draft

CONFIG_PREFIX = "cfg"
DEFAULT_ROWS = 4
MAX_ROWS = 8


class EvalRunForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Optional; a name is made up otherwise.")
    query_set = forms.ChoiceField(label="Query set")
    depth = forms.IntegerField(initial=DEFAULT_DEPTH, help_text="Documents per query in each ranked list.")
    baseline = forms.IntegerField(initial=1, help_text="Number of the configuration the others are compared with.")
    resamples = forms.IntegerField(initial=10_000, help_text="Randomization-test and bootstrap resamples.")
    seed = forms.IntegerField(
        initial=0,
        help_text="Stored with the results. The same seed gives the same random resamples and exactly the same "
        "randomization-test p-values on any machine; bootstrap confidence intervals and p-values agree to "
        "floating-point rounding (about 15 significant digits).",
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        tags = list(QueryTag.objects.filter(project=project))
        self.fields["query_set"].choices = query_set_choices(project)
        # Default to the held-out test set: that is what a release is judged on.
        held = next((t for t in tags if t.held_out and t.name == "test"), None) or next(
            (t for t in tags if t.held_out), None
        )
        if held is not None:
            self.fields["query_set"].initial = str(held.pk)

    def choice(self) -> QuerySetChoice:
        return query_set_parse(self.project, self.cleaned_data.get("query_set"))

    def tag(self) -> QueryTag | None:
        return self.choice().tag


class ConfigForm(forms.Form):
    configuration = forms.ModelChoiceField(
        queryset=SearchConfiguration.objects.none(), required=False, empty_label="— or set one up here →",
        label="Saved configuration",
    )  # fmt: skip
    index = forms.ModelChoiceField(queryset=IndexVersion.objects.none(), required=False, empty_label="—")
    mode = forms.ChoiceField(choices=SearchConfiguration.Mode.choices, initial="dense")
    alpha = forms.FloatField(initial=0.5, required=False, label="Dense weight (hybrid)")
    reranker = forms.ModelChoiceField(queryset=None, required=False, empty_label="No reranking")  # type: ignore[arg-type]
    rerank_top_n = forms.IntegerField(initial=50, required=False, label="Rerank top n")
    label = forms.CharField(max_length=190, required=False, help_text="Optional")

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["configuration"].queryset = SearchConfiguration.objects.filter(project=project).select_related(
            "index__corpus", "index__encoder", "reranker"
        )
        self.fields["index"].queryset = IndexVersion.objects.filter(project=project).select_related("corpus", "encoder")
        self.fields["reranker"].queryset = rerankers_offered(project)

    def draft(self) -> tuple[SearchConfiguration, str] | None:
        """The row's configuration (saved, or a checked draft) and its label; None for an empty row.

        Raises ``WorkbenchError`` with the service's reason when the row's settings are out of range."""
        data = self.cleaned_data
        if data.get("configuration"):
            return data["configuration"], data.get("label") or ""
        if not data.get("index"):
            return None
        draft = search_configuration_draft(
            project=self.project,
            index=data["index"],
            mode=data["mode"],
            alpha=0.5 if data.get("alpha") is None else data["alpha"],
            reranker=data.get("reranker"),
            rerank_top_n=data.get("rerank_top_n") or 50,
        )
        return draft, data.get("label") or ""


ConfigFormSet = formset_factory(ConfigForm, extra=0, max_num=MAX_ROWS, absolute_max=MAX_ROWS, validate_max=True)


def config_formset(project: Project, data: Any = None, *, rows: int = DEFAULT_ROWS) -> Any:
    """Rows pre-filled with the newest index in dense, BM25 and hybrid mode; the remaining rows are empty."""
    newest = IndexVersion.objects.filter(project=project).order_by("-created_at").first()
    modes = ["dense", "bm25", "hybrid"]
    initial = [
        {"index": newest.pk if newest and i < len(modes) else None, "mode": modes[i] if i < len(modes) else "dense",
         "alpha": 0.5, "rerank_top_n": 50}
        for i in range(max(1, min(rows, MAX_ROWS)))
    ]  # fmt: skip
    return ConfigFormSet(data, initial=initial, prefix=CONFIG_PREFIX, form_kwargs={"project": project})
