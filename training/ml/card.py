"""The model card written beside every trained artifact (README.md), from its manifest."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "transformers", "sentence-transformers", "peft", "accelerate", "datasets")

INTENDED_USE = {
    "bi_encoder": "First-stage dense retrieval on the collection the snapshot was labelled on: build an index with it.",
    "cross_encoder": "Reranking the top candidates of a first-stage retriever on the snapshot's collection.",
    "distilled": "A faster reranker distilled from its teacher: rerank the top candidates of a first-stage retriever "
    "on the snapshot's collection where the teacher is too slow; it trades the dev loss above for the speed above.",
    "lora_adapter": "A LoRA adapter: load it on top of its recorded base model only (the fingerprint is checked).",
}


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def card_text(manifest: dict[str, Any]) -> str:
    m = manifest.get("metrics", {})
    counts = manifest.get("counts", {})
    lines = [
        f"# {manifest.get('kind', 'model')} trained from a label snapshot",
        "",
        f"**Verdict:** {manifest.get('verdict', '')}",
        "",
        "## Base",
        f"- path: `{manifest.get('base')}`",
        f"- fingerprint (sha256 of its files): `{manifest.get('base_fingerprint')}`",
        "",
        "## Data",
        f"- snapshot hash: `{manifest.get('snapshot_hash')}`",
        *[f"- {k.replace('_', ' ')}: {v}" for k, v in sorted(counts.items())],
        "",
        "## Dev metrics (model selection)",
        f"- metric: {m.get('dev_metric')}",
        f"- base: {_fmt(m.get('base_dev'))}, best checkpoint: {_fmt(m.get('best_dev'))}, improved: {m.get('improved')}",
        *[f"- warning: {w}" for w in manifest.get("warnings", [])],
        "",
        *_distillation_lines(manifest.get("distillation")),
        "## Training",
        f"- seed: {manifest.get('seed')}, steps: {m.get('steps')}, training time: {m.get('train_seconds')} s",
        f"- hardware: {json.dumps(manifest.get('hardware', {}))}",
        f"- libraries: {json.dumps(manifest.get('libraries', {}))}",
        "",
        "## Hyperparameters",
        "```json",
        json.dumps(manifest.get("parameters", {}), indent=2, sort_keys=True),
        "```",
        "",
        "## Intended use",
        INTENDED_USE.get("distilled" if manifest.get("distillation") else str(manifest.get("kind")), ""),
        "Not evaluated outside this collection; re-evaluate before serving it elsewhere.",
        "",
    ]
    return "\n".join(lines)


def _distillation_lines(d: dict[str, Any] | None) -> list[str]:
    """Teacher vs student, side by side: what the student lost on dev and what it gained in speed."""
    if not d:
        return []
    speed = d.get("speed") or {}
    delta = d.get("delta_points")
    return [
        "## Distillation (teacher vs student)",
        f"- teacher: `{d.get('teacher')}` (fingerprint `{d.get('teacher_fingerprint')}`)",
        f"- student start: {d.get('student_init')}; loss: {d.get('loss')}; candidates per train query: "
        f"{d.get('candidates_per_query')}; teacher-scored pairs: {d.get('teacher_pairs_scored')}",
        "",
        "| | teacher | student |",
        "|---|---|---|",
        f"| transformer layers | {d.get('teacher_layers')} | {d.get('student_layers')} |",
        f"| max tokens | {d.get('teacher_max_length')} | {d.get('student_max_length')} |",
        f"| dev nDCG@10 | {_fmt(d.get('teacher_dev'))} | {_fmt(d.get('student_dev'))} |",
        f"| ms per pair ({speed.get('device', '?')}, {speed.get('pairs', 0)} pairs) | "
        f"{_fmt(speed.get('teacher_ms_per_pair'))} | {_fmt(speed.get('student_ms_per_pair'))} |",
        "",
        f"- dev nDCG@10 student minus teacher: {'—' if delta is None else f'{delta:+.1f}'} points "
        f"(offered within {d.get('tolerance_points')} points below the teacher); "
        f"the student is {speed.get('ratio', '—')}x faster per pair",
        "",
    ]


def write_card(directory: str | Path, manifest: dict[str, Any]) -> Path:
    path = Path(directory) / "README.md"
    path.write_text(card_text(manifest), encoding="utf-8")
    return path
