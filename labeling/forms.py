"""Forms of the labeling app: they parse and check input; services decide and write."""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth import get_user_model

from labeling.models import Campaign, LabelSnapshot
from labeling.services.campaigns import judges_of
from workbench.models import Corpus, ModelVersion, Project, QueryTag, SearchConfiguration


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    corpus = forms.ModelChoiceField(queryset=Corpus.objects.none())
    tag = forms.ModelChoiceField(queryset=QueryTag.objects.none(), required=False, label="Query set: tag")
    query_ids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="…or query ids (one per line or comma-separated; with a tag: only these of it)",
    )
    log_queries = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="…and/or queries from a search log (one text per line; added to the project, tagged 'log')",
    )
    configurations = forms.ModelMultipleChoiceField(
        queryset=SearchConfiguration.objects.none(), widget=forms.CheckboxSelectMultiple, label="Pool from"
    )
    depth = forms.IntegerField(min_value=1, max_value=1000, initial=10, label="Pool depth k")
    overlap = forms.IntegerField(min_value=1, max_value=5, initial=1, label="Annotators per pair (1–5)")
    blind = forms.BooleanField(required=False, initial=True, label="Blind (annotators never see others' grades)")
    aggregation = forms.ChoiceField(choices=Campaign.Aggregation.choices)
    disagreement_threshold = forms.IntegerField(
        min_value=0, max_value=10, initial=1, label="Adjudicate when grades differ by more than"
    )
    order = forms.ChoiceField(choices=Campaign.Order.choices, label="Queue order")
    boundary_model = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=False, label="Boundary order: score pairs with",
        empty_label="the pool's own scores (normalised per configuration and query)",
    )  # fmt: skip
    boundary = forms.FloatField(
        min_value=0.0, max_value=1.0, initial=0.5, required=False, label="Decision boundary (0–1 score)"
    )
    annotators = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), widget=forms.CheckboxSelectMultiple, required=False,
        help_text="None ticked: every member who may judge.",
    )  # fmt: skip
    guidelines = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 8}), label="Guidelines (markdown)"
    )

    def __init__(self, *args, project: Project, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["corpus"].queryset = Corpus.objects.filter(project=project)
        self.fields["tag"].queryset = QueryTag.objects.filter(project=project)
        self.fields["configurations"].queryset = SearchConfiguration.objects.filter(project=project).select_related(
            "index"
        )
        self.fields["annotators"].queryset = get_user_model().objects.filter(pk__in=[u.pk for u in judges_of(project)])
        self.fields["boundary_model"].queryset = ModelVersion.objects.filter(
            project=project, kind=ModelVersion.Kind.CROSS_ENCODER, usable_for_search=True
        )

    def log_query_list(self) -> list[str]:
        return [t for t in (self.cleaned_data.get("log_queries") or "").splitlines() if t.strip()]

    def query_id_list(self) -> list[str]:
        return [q for q in re.split(r"[\s,]+", self.cleaned_data.get("query_ids") or "") if q]


class ReassignForm(forms.Form):
    """Who gives their unjudged pairs to whom (the ML lead's tool when someone leaves or falls behind)."""

    from_user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Unjudged pairs of")
    to_user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="go to")

    def __init__(self, *args, campaign: Campaign, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        User = get_user_model()
        self.fields["from_user"].queryset = (
            User.objects.filter(assignments__campaign=campaign, assignments__judgment__isnull=True)
            .distinct()
            .order_by("username")
        )
        self.fields["to_user"].queryset = User.objects.filter(
            pk__in=[u.pk for u in judges_of(campaign.project)]
        ).order_by("username")


class GuidelineForm(forms.Form):
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 10}), label="Guidelines (markdown)")


class AdjudicateForm(forms.Form):
    grade = forms.IntegerField()
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)


class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=200)
    corpus = forms.ModelChoiceField(queryset=Corpus.objects.none())
    source = forms.ChoiceField(
        choices=[(LabelSnapshot.Source.GOLD, "Gold: all judgments, adjudicated where adjudicated"),
                 (LabelSnapshot.Source.IMPORTED, "Imported judgments only")],
    )  # fmt: skip
    dev_fraction = forms.FloatField(min_value=0.0, max_value=0.9, initial=0.15, label="Dev share of queries")
    seed = forms.IntegerField(initial=0)
    audited = forms.BooleanField(required=False, initial=True, label="Add audited hard negatives")

    def __init__(self, *args, project: Project, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["corpus"].queryset = Corpus.objects.filter(project=project)


class MiningForm(forms.Form):
    snapshot = forms.ModelChoiceField(queryset=LabelSnapshot.objects.none())
    configuration = forms.ModelChoiceField(
        queryset=SearchConfiguration.objects.none(), help_text="Its encoder embeds queries and passages."
    )
    range_min = forms.IntegerField(min_value=0, max_value=999, initial=10, label="Rank window from")
    range_max = forms.IntegerField(min_value=1, max_value=1000, initial=100, label="to")
    relative_margin = forms.FloatField(
        min_value=0.0, max_value=0.99, initial=0.05, required=False,
        help_text="0.05: a candidate scoring above 95 % of the positive is suspected relevant (TopK-PercPos).",
    )  # fmt: skip
    num_negatives = forms.IntegerField(min_value=1, max_value=50, initial=5, label="Maximum per query")
    cross_encoder = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=False, label="Rescore with cross-encoder (optional)"
    )

    def __init__(self, *args, project: Project, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = LabelSnapshot.objects.filter(project=project)
        self.fields["configuration"].queryset = SearchConfiguration.objects.filter(project=project)
        self.fields["cross_encoder"].queryset = ModelVersion.objects.filter(project=project, kind="cross_encoder")


class AutojudgeForm(forms.Form):
    base_url = forms.URLField(label="Base URL (OpenAI-compatible)", assume_scheme="https")
    model = forms.CharField(max_length=200)
    api_key_env = forms.CharField(max_length=100, required=False, label="Environment variable holding the key")
    limit = forms.IntegerField(min_value=1, max_value=5000, initial=200, label="Pairs at most")


class CrossEncoderJudgeForm(forms.Form):
    cross_encoder = forms.ModelChoiceField(queryset=ModelVersion.objects.none(), label="Trained cross-encoder")
    limit = forms.IntegerField(min_value=1, max_value=5000, initial=500, label="Pairs at most")

    def __init__(self, *args, project: Project, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["cross_encoder"].queryset = ModelVersion.objects.filter(
            project=project, kind="cross_encoder", usable_for_search=True
        )
