"""Loading a trained LoRA adapter on top of the base it was trained for, and only that base."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from training.ml.config import TrainingInputError
from workbench.retrieval.artifacts import read_manifest
from workbench.retrieval.encoders import model_fingerprint


def check_adapter_base(adapter_dir: str | os.PathLike[str], base_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The adapter's manifest; ``TrainingInputError`` unless ``base_path`` holds exactly the recorded base."""
    manifest = read_manifest(adapter_dir)
    if manifest.get("kind") != "lora_adapter":
        raise TrainingInputError(f"{adapter_dir} is not a LoRA adapter (kind {manifest.get('kind')!r}).")
    expected = manifest.get("base_fingerprint")
    actual = model_fingerprint(base_path)
    if not expected or expected != actual:
        raise TrainingInputError(
            f"This adapter was trained on base {manifest.get('base')} (fingerprint {str(expected)[:12]}); "
            f"{base_path} is another model (fingerprint {actual[:12]}). Load it on its own base."
        )
    return manifest


def load_adapter(adapter_dir: str | os.PathLike[str], base_path: str | os.PathLike[str], *, device: str = "cpu") -> Any:
    """The base model with the adapter loaded on top (a SentenceTransformer or a CrossEncoder)."""
    manifest = check_adapter_base(adapter_dir, base_path)
    if manifest.get("adapter_of") == "cross_encoder":
        from sentence_transformers import CrossEncoder

        model: Any = CrossEncoder(str(base_path), num_labels=1, device=device, local_files_only=True)
    else:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(base_path), device=device, local_files_only=True)
    model.load_adapter(str(Path(adapter_dir)))
    model.eval()
    return model
