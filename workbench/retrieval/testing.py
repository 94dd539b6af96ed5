"""Tiny models built from a config, for fast tests of anything that embeds, indexes or reranks.

They use the base encoder's tokenizer (so text is tokenized as in production) with a 2-layer, 32-wide BERT, which
loads and encodes in milliseconds. Weights are seeded, so the same call gives the same model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from workbench.retrieval.encoders import base_model_path

TINY_HIDDEN = 32
TINY_MAX_SEQ_LENGTH = 128


def _tiny_bert_config(vocab_size: int, **extra: object) -> object:
    from transformers import BertConfig

    return BertConfig(
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        vocab_size=vocab_size,
        max_position_embeddings=TINY_MAX_SEQ_LENGTH,
        **extra,
    )


def build_tiny_encoder(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Save a tiny sentence-transformers bi-encoder (mean pooling + normalize, dimension 32) into ``path``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertModel

    out = Path(path)
    hf_dir = out.with_name(out.name + "-hf")
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)
    torch.manual_seed(seed)
    BertModel(_tiny_bert_config(len(tokenizer))).save_pretrained(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))
    transformer = Transformer(str(hf_dir), max_seq_length=TINY_MAX_SEQ_LENGTH)
    model = SentenceTransformer(modules=[transformer, Pooling(TINY_HIDDEN, "mean"), Normalize()], device="cpu")
    model.save(str(out))
    shutil.rmtree(hf_dir)
    return out


def build_tiny_cross_encoder(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Save a tiny sentence-transformers cross-encoder (one relevance logit) into ``path``."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertForSequenceClassification

    out = Path(path)
    hf_dir = out.with_name(out.name + "-hf")
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)
    torch.manual_seed(seed)
    BertForSequenceClassification(_tiny_bert_config(len(tokenizer), num_labels=1)).save_pretrained(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))
    CrossEncoder(str(hf_dir), device="cpu", max_length=TINY_MAX_SEQ_LENGTH, local_files_only=True).save(str(out))
    shutil.rmtree(hf_dir)
    return out
