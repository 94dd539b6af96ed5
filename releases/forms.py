from __future__ import annotations

from typing import Any

from django import forms

from evaluation.models import AnswerRun, EvalRun
from releases.models import GatePolicy
from workbench.models import Project, QueryTag, SearchConfiguration


class ProposeForm(forms.Form):
    configuration = forms.ModelChoiceField(queryset=SearchConfiguration.objects.none(), label="Search configuration")
    eval_runs = forms.ModelMultipleChoiceField(
        queryset=EvalRun.objects.none(), label="Judged by", widget=forms.CheckboxSelectMultiple,
        help_text="Finished evaluations whose numbers the gates read (retrieval on held-out or golden sets).",
    )  # fmt: skip
    answer_runs = forms.ModelMultipleChoiceField(
        queryset=AnswerRun.objects.none(), required=False, label="Answer QA", widget=forms.CheckboxSelectMultiple,
        help_text="Finished answer runs of the same configuration; the hallucination gate reads their QA.",
    )  # fmt: skip
    name = forms.CharField(max_length=200, required=False, help_text="Optional; the configuration's name otherwise.")
    golden_tag = forms.ModelChoiceField(
        queryset=QueryTag.objects.none(), required=False, label="Golden query set",
        help_text="Re-run on a schedule while the release is active (default: the held-out set it was judged on).",
    )  # fmt: skip
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["configuration"].queryset = SearchConfiguration.objects.filter(project=project).select_related(
            "index__corpus", "index__encoder"
        )
        self.fields["eval_runs"].queryset = EvalRun.objects.filter(project=project, finished_at__isnull=False)
        self.fields["golden_tag"].queryset = QueryTag.objects.filter(project=project)
        self.fields["answer_runs"].queryset = AnswerRun.objects.filter(project=project, finished_at__isnull=False)


class ApproveForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False,
        help_text="Required when a gate failed or could not be computed; recorded in the audit log.",
    )  # fmt: skip


class TrafficForm(forms.Form):
    canary_share = forms.IntegerField(min_value=0, max_value=100, initial=0, label="Canary share (%)")
    shadow = forms.BooleanField(required=False, label="Shadow (search beside the active release, log only)")


class GatePolicyForm(forms.ModelForm):
    class Meta:
        model = GatePolicy
        fields = [
            "recall_at_5_min", "mrr_min", "hallucination_max", "p95_latency_ms_max", "noninferiority_margin",
            "judge_calibration_min",
        ]  # fmt: skip
