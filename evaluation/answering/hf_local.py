"""``hf-local``: a causal language model from a local directory, optionally with a LoRA adapter (peft).

Loaded offline (``local_files_only``); a path that is not a causal LM is ``GenerationError("bad-model")`` at load.
Decoding is greedy so answers are reproducible. A prompt that does not leave room for ``max_new_tokens`` within the
model's positions is refused as ``GenerationError("context")`` rather than silently truncated.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from .base import DEFAULT_POLICY, Answer, GenerationError, RetrievedPassage
from .prompt import build_messages, parse_answer, plain_prompt

DEFAULT_MAX_NEW_TOKENS = 160


def _context_limit(model: Any, tokenizer: Any) -> int:
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 10**7 else 2048


class HFLocalGenerator:
    name = "hf-local"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        adapter_path: str | os.PathLike[str] | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise GenerationError("bad-model", f"{self.path} is not a model directory (no config.json)")
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True)
        except Exception as exc:  # transformers raises many types for "this is not a causal LM"
            raise GenerationError("bad-model", f"{self.path} cannot be loaded as a causal LM: {exc}") from None
        if adapter_path:
            adapter = Path(adapter_path)
            if not (adapter / "adapter_config.json").is_file():
                raise GenerationError("bad-model", f"{adapter} is not a LoRA adapter (no adapter_config.json)")
            try:
                from peft import PeftModel

                self.model = PeftModel.from_pretrained(self.model, adapter)
            except Exception as exc:
                raise GenerationError("bad-model", f"the adapter {adapter} does not fit {self.path}: {exc}") from None
        self.model.eval()
        self.max_new_tokens = max(1, int(max_new_tokens))
        self.context_limit = _context_limit(self.model, self.tokenizer)
        self.threads = threads
        self._lock = threading.Lock()  # one generate at a time per loaded model

    def prompt_text(self, query: str, passages: list[RetrievedPassage], policy: str) -> str:
        messages = build_messages(query, passages, policy=policy)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return plain_prompt(messages)

    def generate(
        self, query: str, passages: list[RetrievedPassage], *, policy: str = DEFAULT_POLICY, threshold: float = 0.0
    ) -> Answer:
        import torch

        prompt = self.prompt_text(query, passages, policy)
        encoded = self.tokenizer(prompt, return_tensors="pt")
        n = int(encoded["input_ids"].shape[1])
        if n + self.max_new_tokens > self.context_limit:
            raise GenerationError(
                "context",
                f"the prompt has {n} tokens; with {self.max_new_tokens} new tokens it exceeds the model's "
                f"{self.context_limit} positions (retrieve fewer passages)",
            )
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        with self._lock, torch.inference_mode():
            old = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                out = self.model.generate(
                    **encoded, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad
                )
            except Exception as exc:
                raise GenerationError("error", f"generation failed: {exc}") from None
            finally:
                if self.threads:
                    torch.set_num_threads(old)
        raw = self.tokenizer.decode(out[0][n:], skip_special_tokens=True)
        return parse_answer(raw, passages)
