"""Forms of the answer pages. Range checks with a user-facing reason live in the services."""

from __future__ import annotations

from typing import Any

from django import forms

from evaluation.models import AnswerRun
from workbench.models import ModelVersion, Project, QueryTag, SearchConfiguration

BACKEND_FIELDS = {
    "extractive": ("max_sentences", "passages_considered"),
    "hf-local": ("model_path", "adapter_path", "max_new_tokens"),
    "openai-compatible": ("base_url", "model", "api_key_env", "timeout_s", "max_tokens"),
}


class AnswerRunForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Optional; a name is made up otherwise.")
    configuration = forms.ModelChoiceField(queryset=SearchConfiguration.objects.none(), label="Search configuration")
    query_set = forms.ChoiceField(label="Query set", required=False)
    backend = forms.ChoiceField(choices=AnswerRun.Backend.choices, initial="extractive", label="Generator backend")
    citation_policy = forms.ChoiceField(choices=AnswerRun.Policy.choices, initial="each-claim")
    abstain_threshold = forms.FloatField(
        initial=0.6, label="Abstention threshold",
        help_text="Cosine similarity (index encoder) of the best sentence to the query; below it the system abstains. "
        "On SciFact with MiniLM, 0.6 abstains on 38 % of the claims without retrieved evidence and answers 93 % "
        "of the rest (bench/answers_scifact.py).",
    )  # fmt: skip
    passages_k = forms.IntegerField(initial=5, min_value=1, max_value=20, label="Passages per answer")
    review_overlap = forms.IntegerField(initial=1, min_value=1, max_value=5, label="Reviews per answer")
    gold = forms.ChoiceField(
        choices=[("", "None"), ("scifact", "SciFact rationales (original release)")], required=False,
        label="Gold evidence",
    )  # fmt: skip
    # extractive
    max_sentences = forms.IntegerField(initial=2, required=False, label="Sentences per answer")
    passages_considered = forms.IntegerField(initial=3, required=False, label="Top passages read")
    # hf-local
    model_path = forms.CharField(required=False, max_length=1000, label="Model directory")
    adapter = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(), required=False, label="LoRA adapter (model version)",
        empty_label="— or a directory below —",
    )  # fmt: skip
    adapter_path = forms.CharField(required=False, max_length=1000, label="LoRA adapter directory (optional)")
    max_new_tokens = forms.IntegerField(initial=160, required=False)
    # openai-compatible
    base_url = forms.CharField(
        required=False, max_length=500, label="Base URL", help_text="e.g. http://127.0.0.1:8000/v1"
    )
    model = forms.CharField(required=False, max_length=200, label="Model name")
    api_key_env = forms.CharField(
        required=False, max_length=100, label="API key environment variable",
        help_text="The NAME of the variable holding the key on the workers (the key itself is never stored).",
    )  # fmt: skip
    timeout_s = forms.FloatField(initial=30, required=False, label="Timeout (s)")
    max_tokens = forms.IntegerField(initial=300, required=False)

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["configuration"].queryset = SearchConfiguration.objects.filter(project=project).select_related(
            "index__corpus", "index__encoder", "reranker"
        )
        self.fields["adapter"].queryset = ModelVersion.objects.filter(
            project=project, kind=ModelVersion.Kind.LORA_ADAPTER
        )
        tags = list(QueryTag.objects.filter(project=project))
        self.fields["query_set"].choices = [("", "All queries")] + [(str(t.pk), f"tag {t.name}") for t in tags]
        test = next((t for t in tags if t.name == "test"), None)
        if test is not None:
            self.fields["query_set"].initial = str(test.pk)

    def tag(self) -> QueryTag | None:
        value = self.cleaned_data.get("query_set")
        return QueryTag.objects.filter(project=self.project, pk=int(value)).first() if value else None

    def backend_settings(self) -> dict[str, Any]:
        backend = self.cleaned_data["backend"]
        out = {k: self.cleaned_data.get(k) for k in BACKEND_FIELDS.get(backend, ())}
        if backend == "hf-local" and self.cleaned_data.get("adapter") is not None:
            out["adapter_path"] = self.cleaned_data["adapter"].path  # a trained adapter wins over a typed path
        return out


class JudgeForm(forms.Form):
    judge = forms.ChoiceField(
        choices=[("cross-encoder", "Cross-encoder (local path)"), ("nli", "NLI model (local path)"),
                 ("llm", "LLM (OpenAI-compatible)")],
    )  # fmt: skip
    path = forms.CharField(required=False, max_length=1000, label="Model directory")
    base_url = forms.CharField(required=False, max_length=500)
    model = forms.CharField(required=False, max_length=200)
    api_key_env = forms.CharField(required=False, max_length=100, label="API key environment variable")
