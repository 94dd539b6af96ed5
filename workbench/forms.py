from __future__ import annotations

from typing import Any

from django import forms

from workbench.errors import WorkbenchError
from workbench.models import Corpus, IndexVersion, ModelVersion, Project, Role, SearchConfiguration
from workbench.parsers import grade_map_text, parse_grade_map


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):  # type: ignore[no-untyped-def]
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


def single_choice_preselect(form: forms.Form, *names: str) -> None:
    """A required choice with exactly one option starts on that option, not on "---------"."""
    for name in names:
        field = form.fields[name]
        if isinstance(field, forms.ModelChoiceField) and field.required and field.queryset.count() == 1:
            field.empty_label = None
            field.initial = field.queryset.first()


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)


class CorpusForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    chunk_size = forms.IntegerField(min_value=8, max_value=512, initial=224, help_text="Tokens per passage")
    chunk_overlap = forms.IntegerField(min_value=0, max_value=256, initial=32, help_text="Tokens shared by neighbours")
    files = MultipleFileField(
        help_text="BEIR corpus.jsonl, JSONL with a text field, .txt, .md, .html — several at once", required=True
    )


class CorpusUploadForm(forms.Form):
    files = MultipleFileField()


class QueriesImportForm(forms.Form):
    files = MultipleFileField(help_text="BEIR queries.jsonl, CSV (id,text,tags) or one query per line")
    tags = forms.CharField(required=False, help_text="Comma-separated tags (slices) for every imported query")
    held_out = forms.BooleanField(required=False, help_text="Tags mark a held-out set (never used for training)")

    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data.get("tags", "").split(",") if t.strip()]


class QrelsImportForm(forms.Form):
    corpus = forms.ModelChoiceField(queryset=Corpus.objects.none())
    files = MultipleFileField(help_text="BEIR qrels TSV or TREC qrels")
    split = forms.CharField(required=False, max_length=100, help_text="Split name (default: the file name, e.g. test)")
    grade_map = forms.CharField(
        required=False,
        max_length=500,
        label="Grade mapping",
        help_text="Map grades outside the project's scale, FROM:TO, comma-separated (e.g. -1:0,4:3)",
    )
    clip = forms.BooleanField(
        required=False, label="Clip other grades", help_text="Any other grade outside the scale becomes its nearest end"
    )

    def __init__(self, *args, project: Project, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["corpus"].queryset = project.corpora.all()
        single_choice_preselect(self, "corpus")
        self.fields["grade_map"].help_text += f"; this project's scale is {project.grade_min}–{project.grade_max}"

    def clean_grade_map(self) -> str:
        try:
            return grade_map_text(parse_grade_map(self.cleaned_data.get("grade_map", "")))
        except WorkbenchError as exc:
            raise forms.ValidationError(str(exc)) from None


class GradeScaleForm(forms.Form):
    grade_min = forms.IntegerField(min_value=0, max_value=9, label="Lowest grade")
    grade_max = forms.IntegerField(min_value=1, max_value=10, label="Highest grade")
    labels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One label per grade, lowest first, one per line (empty: show the numbers)",
    )
    relevance_threshold = forms.IntegerField(
        min_value=1, label="Relevant from grade", help_text="Lowest grade binary metrics (recall, MRR, MAP) count"
    )

    @classmethod
    def for_project(cls, project: Project, data=None) -> GradeScaleForm:  # type: ignore[no-untyped-def]
        initial = {
            "grade_min": project.grade_min,
            "grade_max": project.grade_max,
            "labels": "\n".join(label for _, label in project.grades),
            "relevance_threshold": project.relevance_threshold,
        }
        return cls(data, initial=initial)

    def label_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("labels", "").splitlines() if line.strip()]


class ModelRegisterForm(forms.Form):
    path = forms.CharField(
        max_length=1000, help_text="A sentence-transformers or cross-encoder directory on this server"
    )
    name = forms.CharField(max_length=200, required=False)


class IndexBuildForm(forms.Form):
    corpus = forms.ModelChoiceField(queryset=Corpus.objects.none())
    encoder = forms.ModelChoiceField(queryset=None)  # type: ignore[arg-type]
    index_type = forms.ChoiceField(
        choices=[
            ("auto", "Automatic (by corpus size)"),
            ("flat", "Flat (exact)"),
            ("hnsw", "HNSW"),
            ("ivfpq", "IVF-PQ"),
        ]
    )
    hnsw_m = forms.IntegerField(required=False, min_value=2, max_value=256, label="HNSW M", initial=32)
    ef_construction = forms.IntegerField(required=False, min_value=2, label="HNSW efConstruction", initial=128)
    ef_search = forms.IntegerField(required=False, min_value=1, label="HNSW efSearch", initial=256)
    nlist = forms.IntegerField(required=False, min_value=1, label="IVF nlist", initial=1024)
    pq_m = forms.IntegerField(required=False, min_value=1, label="PQ m (bytes per vector)", initial=48)
    nprobe = forms.IntegerField(required=False, min_value=1, label="IVF nprobe", initial=64)
    refine = forms.IntegerField(
        required=False, min_value=0, label="Refine (re-rank refine×k PQ candidates exactly; 0 = off)", initial=8
    )

    answer_sentences = forms.BooleanField(
        required=False,
        initial=True,
        label="Store answer sentences",
        help_text="Also embed every passage's citable sentences, so extractive answers need no encoder pass "
        "(answers in milliseconds on any CPU; embedding takes about twice as long)",
    )
    reuse_vectors = forms.BooleanField(
        required=False,
        initial=True,
        label="Reuse vectors of unchanged passages",
        help_text="Passages (and answer sentences) whose text an earlier index of this corpus already embedded with "
        "the same weights take its vectors instead of being embedded again (from a Flat, HNSW or refined IVF-PQ "
        "index): a rebuild with other parameters, or after an import, embeds only what changed. Untick to embed "
        "everything afresh",
    )

    TYPE_FIELDS = {"hnsw": ("hnsw_m", "ef_construction", "ef_search"), "ivfpq": ("nlist", "pq_m", "nprobe", "refine")}

    def __init__(self, *args, project: Project, **kwargs) -> None:  # type: ignore[no-untyped-def]
        from workbench.models import ModelVersion

        super().__init__(*args, **kwargs)
        self.fields["corpus"].queryset = project.corpora.all()
        self.fields["encoder"].queryset = ModelVersion.objects.filter(
            project=project, kind=ModelVersion.Kind.BI_ENCODER
        )
        single_choice_preselect(self, "corpus", "encoder")

    def index_params(self) -> dict[str, int]:
        names = self.TYPE_FIELDS.get(self.cleaned_data["index_type"], ())
        return {n: self.cleaned_data[n] for n in names if self.cleaned_data.get(n) is not None}


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="my token")


class SearchConfigurationForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="How evaluations, campaigns and releases will name it.")
    index = forms.ModelChoiceField(queryset=IndexVersion.objects.none(), empty_label=None, label="Index version")
    mode = forms.ChoiceField(choices=SearchConfiguration.Mode.choices, initial="hybrid")
    alpha = forms.FloatField(initial=0.5, label="Dense weight", help_text="Hybrid only: BM25 gets 1 - weight.")
    fusion_depth = forms.IntegerField(initial=100, help_text="Hybrid only: candidates each list brings to fusion.")
    reranker = forms.ModelChoiceField(queryset=ModelVersion.objects.none(), required=False, empty_label="No reranking")
    rerank_top_n = forms.IntegerField(initial=50, label="Rerank top n", help_text="Candidates the reranker rescores.")
    rerank_adaptive = forms.BooleanField(
        required=False,
        label="Adaptive rerank depth",
        help_text="Rerank fewer candidates when the first stage is confident.",
    )
    rerank_min_n = forms.IntegerField(
        initial=10,
        min_value=1,
        required=False,
        label="Rerank at least",
        help_text="Adaptive: the fewest candidates reranked.",
    )
    rerank_margin = forms.FloatField(
        initial=0.5,
        required=False,
        min_value=0.0,
        max_value=1.0,
        label="Adaptive margin",
        help_text="Rerank candidates whose first-stage score is within this share of the spread (top minus "
        "top-n-th) from the top; 1 reranks all.",
    )
    rerank_weight = forms.FloatField(
        initial=1.0,
        required=False,
        min_value=0.01,
        max_value=1.0,
        label="Reranker weight",
        help_text="1 ranks by the reranker alone; below 1 blends its z-scored scores with the first stage's "
        "(a reranker's training run picks a weight on dev).",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # Left blank (or by clients that predate adaptive depth): the model's defaults.
        for name in ("rerank_min_n", "rerank_margin", "rerank_weight"):
            if data.get(name) is None:
                data[name] = self.fields[name].initial
        return data

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["index"].queryset = IndexVersion.objects.filter(project=project).select_related("corpus", "encoder")
        self.fields["reranker"].queryset = ModelVersion.objects.filter(
            project=project, kind=ModelVersion.Kind.CROSS_ENCODER, usable_for_search=True
        )
