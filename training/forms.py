"""The start form of a training run: every knob has a default and a one-line explanation."""

from __future__ import annotations

from typing import Any

from django import forms

from labeling.models import LabelSnapshot
from training.ml.config import LAYER_PICKS, BiEncoderConfig, CrossEncoderConfig, DistillConfig
from workbench.models import Corpus, ModelVersion, Project

BI, CE, KD = BiEncoderConfig(), CrossEncoderConfig(), DistillConfig()
RERANKER_LOSSES = ("bce", "lambda")
DISTILL_LOSSES = ("mse", "margin_mse", "listnet")
BASE_BUILTIN = ""


def _num(cls: type[forms.Field], label: str, help_text: str, **kw: Any) -> forms.Field:
    return cls(label=label, required=False, help_text=help_text, **kw)


# one label per ``training.ml.config.LAYER_PICKS`` value, so the form offers exactly what the recipe accepts
_LAYER_PICK_LABELS = {"first": "The bottom ones", "spread": "Evenly spaced, ending with the top layer"}
LAYER_PICK_CHOICES = [(pick, _LAYER_PICK_LABELS[pick]) for pick in LAYER_PICKS]


class TrainingRunForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Blank: named after the snapshot and kind.")
    snapshot = forms.ModelChoiceField(
        queryset=LabelSnapshot.objects.none(),
        required=False,
        help_text="Trains on its train split; selects the best checkpoint on dev. Held-out queries are never used.",
    )
    freeze_source = forms.ChoiceField(
        choices=[("", "—"), ("imported", "Imported judgments"), ("gold", "Gold labels (every judgment, gold rule)")],
        required=False,
        label="…or freeze a new snapshot from",
        help_text="Freezes the corpus's labels now (test/held-out queries go to test; dev is carved from the rest).",
    )
    corpus = forms.ModelChoiceField(queryset=Corpus.objects.none(), required=False, help_text="For a new snapshot.")
    dev_fraction = forms.FloatField(
        required=False, label="Dev share", help_text="New snapshot: share of non-held-out queries kept for dev; 0.15."
    )
    kind = forms.ChoiceField(
        choices=[
            ("bi_encoder", "Bi-encoder (first-stage retriever)"),
            ("cross_encoder", "Cross-encoder reranker"),
            ("distill", "Distilled reranker: a smaller, faster student of a trained reranker"),
        ],
        initial="bi_encoder",
        widget=forms.RadioSelect,
        help_text="A bi-encoder needs a new index; a reranker rescores the top results of any index; a distilled "
        "reranker trades a little quality for speed.",
    )
    base = forms.ChoiceField(
        required=False,
        help_text="What training starts from. A reranker from a bi-encoder gets a fresh scoring head "
        "(distillation: used only when the student starts from the base).",
    )
    first_stage = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(),
        required=False,
        label="Mining model (reranker, distillation)",
        help_text="Bi-encoder whose top results give the reranker its hard negatives; blank: the built-in encoder.",
    )
    loss = forms.ChoiceField(
        choices=[
            ("", "Default (MNRL / BCE)"),
            ("mnrl", "Bi-encoder: multiple negatives ranking"),
            ("cached_mnrl", "Bi-encoder: cached MNRL (big batch, little memory)"),
            ("bce", "Reranker: binary cross-entropy, positives weighted"),
            ("lambda", "Reranker: LambdaLoss (listwise)"),
            ("mse", "Distillation: MSE on the teacher's scores (pointwise)"),
            ("margin_mse", "Distillation: margin MSE (positive minus each candidate)"),
            ("listnet", "Distillation: ListNet on the teacher's score distribution (listwise)"),
        ],
        required=False,
        help_text="In-batch negatives for bi-encoders; pointwise or listwise for rerankers; distillation: MSE.",
    )
    teacher = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(),
        required=False,
        label="Teacher (distillation)",
        help_text="The trained reranker whose scores the student learns; its dev score is the bar.",
    )
    student_init = forms.ChoiceField(
        choices=[("teacher", "The teacher, cut to fewer layers"), ("base", "The base above (fresh head)")],
        required=False,
        label="Student starts from",
        help_text="Starting from the teacher keeps what it learnt in its lower layers; usually best.",
    )
    student_layers = _num(
        forms.IntegerField,
        "Student layers",
        f"Transformer layers the student keeps (speed scales with them); 0 = all; default {KD.student_layers}.",
    )
    layer_pick = forms.ChoiceField(
        choices=LAYER_PICK_CHOICES,
        required=False,
        label="Which layers",
        help_text=f"Which of the start's layers the student keeps; default: {dict(LAYER_PICK_CHOICES)[KD.layer_pick]}"
        " (on SciFact the two were within 1.1 dev points of each other).",
    )
    fresh_head = forms.BooleanField(
        required=False, label="Fresh scoring head", help_text="Re-initialise the teacher's head for the student."
    )
    tolerance_points = _num(
        forms.FloatField,
        "Tolerance (points)",
        f"Offer the student if its dev nDCG@10 is at most this many points below the teacher's; "
        f"default {KD.tolerance_points:g}.",
    )
    learning_rate = _num(
        forms.FloatField,
        "Learning rate",
        f"Step size; default {BI.learning_rate:g} ({KD.learning_rate:g} for distillation).",
    )
    epochs = _num(
        forms.FloatField,
        "Epochs",
        f"Passes over the train split; default {BI.epochs:g} ({KD.epochs:g} for distillation).",
    )
    batch_size = _num(
        forms.IntegerField,
        "Batch size",
        f"Queries per step (more = more in-batch negatives); default {BI.batch_size} / {CE.batch_size} (reranker).",
    )
    warmup_ratio = _num(
        forms.FloatField, "Warmup share", f"Share of steps with a rising rate; default {BI.warmup_ratio}."
    )
    max_seq_length = _num(
        forms.IntegerField,
        "Max sequence length",
        f"Tokens per text; longer is slower; default {BI.max_seq_length} ({KD.max_seq_length} for a distilled "
        "student: twice as fast as 256; the teacher keeps its own).",
    )
    num_negatives = _num(
        forms.IntegerField,
        "Hard negatives per query",
        f"Mined with the base model; default {BI.mining.num_negatives} / {CE.mining.num_negatives} (reranker) / "
        f"{KD.mining.num_negatives} (distillation: candidates the teacher scores, ~30 pairs/s on 2 CPU cores).",
    )
    relative_margin = _num(
        forms.FloatField,
        "Relative margin",
        f"Drop candidates within this share of the positive's score (likely unlabelled positives); default "
        f"{BI.mining.relative_margin} (distillation: {KD.mining.relative_margin:g}: the teacher grades every "
        "candidate).",
    )
    range_max = _num(
        forms.IntegerField, "Mining depth", f"Look for negatives in the top this many; default {BI.mining.range_max}."
    )
    matryoshka_dims = forms.CharField(
        required=False,
        help_text="Bi-encoder: comma-separated dimensions to also train truncated embeddings for (e.g. 384,256,128).",
    )
    max_minutes = _num(
        forms.FloatField,
        "Time budget (minutes)",
        "Stop after this long and keep the best checkpoint so far; blank: no limit.",
    )
    seed = _num(forms.IntegerField, "Seed", "Same snapshot + parameters + seed = same run; default 0.")
    lora = forms.BooleanField(required=False, label="LoRA adapter", help_text="Train a small adapter on a frozen base.")
    lora_rank = _num(forms.IntegerField, "LoRA rank", "Adapter size; default 8.")
    lora_alpha = _num(forms.IntegerField, "LoRA alpha", "Adapter scaling; default 16.")
    lora_dropout = _num(forms.FloatField, "LoRA dropout", "Default 0.1.")
    lora_targets = forms.CharField(
        required=False, label="LoRA target modules", help_text="Comma-separated module names; default query,value."
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["snapshot"].queryset = LabelSnapshot.objects.filter(project=project).order_by("-created_at")
        self.fields["corpus"].queryset = Corpus.objects.filter(project=project).order_by("name")
        models = ModelVersion.objects.filter(project=project).exclude(kind=ModelVersion.Kind.LORA_ADAPTER)
        self.fields["base"].choices = [(BASE_BUILTIN, "all-MiniLM-L6-v2 (built in)")] + [
            (str(m.pk), f"{m.name} · {m.get_kind_display()}")
            for m in models.order_by("kind", "name")
            if not (m.kind == ModelVersion.Kind.CROSS_ENCODER and not m.usable_for_search)
            and m.source != ModelVersion.Source.BUILTIN
        ]
        self.fields["first_stage"].queryset = models.filter(kind=ModelVersion.Kind.BI_ENCODER)
        self.fields["teacher"].queryset = models.filter(kind=ModelVersion.Kind.CROSS_ENCODER, usable_for_search=True)

    def clean_matryoshka_dims(self) -> tuple[int, ...]:
        raw = self.cleaned_data["matryoshka_dims"].replace(" ", "")
        try:
            return tuple(int(x) for x in raw.split(",") if x)
        except ValueError:
            raise forms.ValidationError("Give whole numbers separated by commas.") from None

    def clean_base(self) -> ModelVersion | None:
        value = self.cleaned_data["base"]
        if value == BASE_BUILTIN:
            return None
        found = ModelVersion.objects.filter(project=self.project, pk=value).first()
        if found is None:
            raise forms.ValidationError("Unknown model.")
        return found

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        loss, kind = data.get("loss"), data.get("kind")
        family = "distill" if loss in DISTILL_LOSSES else "cross_encoder" if loss in RERANKER_LOSSES else "bi_encoder"
        if loss and kind and family != kind:
            self.add_error("loss", "That loss is for another kind of model.")
        if kind == "distill":
            if not data.get("teacher"):
                self.add_error("teacher", "Pick the trained reranker to distil.")
            if data.get("lora"):
                self.add_error("lora", "Distillation trains a full student; LoRA is not offered for it.")
        if not data.get("snapshot"):
            if not data.get("freeze_source"):
                self.add_error("snapshot", "Pick a snapshot, or freeze a new one.")
            elif not data.get("corpus"):
                self.add_error("corpus", "Pick the corpus whose labels to freeze.")
        return data

    SECTIONS = [
        ("What to train", ["name", "kind", "base", "first_stage", "loss"]),
        ("Distillation", ["teacher", "student_init", "student_layers", "layer_pick", "fresh_head", "tolerance_points"]),
        ("Labels", ["snapshot", "freeze_source", "corpus", "dev_fraction"]),
        (
            "Optimisation",
            ["learning_rate", "epochs", "batch_size", "warmup_ratio", "max_seq_length", "max_minutes", "seed"],
        ),
        ("Hard negatives", ["num_negatives", "relative_margin", "range_max", "matryoshka_dims"]),
        ("LoRA", ["lora", "lora_rank", "lora_alpha", "lora_dropout", "lora_targets"]),
    ]

    def params(self) -> dict[str, Any]:
        """The recipe overrides (None = the kind's default), as ``training.services.training_config`` takes them."""
        d = self.cleaned_data
        params: dict[str, Any] = {
            k: d.get(k) for k in ("learning_rate", "epochs", "batch_size", "warmup_ratio", "max_seq_length", "seed")
        }
        params["loss"] = d.get("loss") or None
        params["max_train_seconds"] = d["max_minutes"] * 60 if d.get("max_minutes") else None
        params["mining"] = {
            "num_negatives": d.get("num_negatives"),
            "relative_margin": d.get("relative_margin"),
            "range_max": d.get("range_max"),
        }
        if d.get("kind") == "distill":
            params["student_init"] = d.get("student_init") or None
            params["student_layers"] = d.get("student_layers")
            params["layer_pick"] = d.get("layer_pick") or None
            params["fresh_head"] = bool(d.get("fresh_head"))
            params["tolerance_points"] = d.get("tolerance_points")
        if d.get("kind") == "bi_encoder" and d.get("matryoshka_dims"):
            params["matryoshka_dims"] = list(d["matryoshka_dims"])
        if d.get("lora"):
            targets = [t.strip() for t in (d.get("lora_targets") or "").split(",") if t.strip()]
            params["lora"] = {
                "rank": d.get("lora_rank") or 8,
                "alpha": d.get("lora_alpha") or 16,
                "dropout": d.get("lora_dropout") if d.get("lora_dropout") is not None else 0.1,
                "target_modules": targets or ["query", "value"],
            }
        return params
