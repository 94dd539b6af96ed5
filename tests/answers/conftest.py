from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SCIFACT


@pytest.fixture
def scifact_gold(settings):  # type: ignore[no-untyped-def]
    """The real SciFact folder (original release files) as the gold-evidence setting."""
    if not (SCIFACT / "original" / "claims_dev.jsonl").is_file():
        pytest.skip(f"SciFact's original release not found at {SCIFACT / 'original'}")
    settings.SCIFACT_DIR = SCIFACT
    return SCIFACT


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from workbench.retrieval.encoders import base_model_path

    out = tmp_path_factory.mktemp("lm") / "tiny-gpt2"
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
