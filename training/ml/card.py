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
        INTENDED_USE.get(str(manifest.get("kind")), ""),
        "Not evaluated outside this collection; re-evaluate before serving it elsewhere.",
        "",
    ]
    return "\n".join(lines)


def write_card(directory: str | Path, manifest: dict[str, Any]) -> Path:
    path = Path(directory) / "README.md"
    path.write_text(card_text(manifest), encoding="utf-8")
    return path
