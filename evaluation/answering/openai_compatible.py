"""``openai-compatible``: any server speaking ``POST {base_url}/chat/completions`` (vLLM, llama.cpp, Ollama, hosted).

The API key is read at call time from the environment variable whose *name* the run stores, so no secret is ever
saved in the database. Standard library HTTP only; every failure maps to a ``GenerationError`` kind.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from typing import Any

from .base import DEFAULT_POLICY, Answer, GenerationError, RetrievedPassage
from .prompt import build_messages, parse_answer

DEFAULT_TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 4 * 2**20
_CONTEXT_HINTS = ("context length", "context_length", "maximum context", "too many tokens", "context window")


class OpenAICompatibleGenerator:
    name = "openai-compatible"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_tokens: int = 300,
        temperature: float = 0.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise GenerationError("error", f"the base URL must start with http:// or https:// (got {base_url!r})")
        if not model.strip():
            raise GenerationError("error", "name the model the server should use")
        self.base_url = base_url.rstrip("/")
        self.model, self.api_key_env = model.strip(), api_key_env.strip()
        self.timeout_s, self.max_tokens, self.temperature = float(timeout_s), int(max_tokens), float(temperature)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env, "")
            if not key:
                raise GenerationError("error", f"the environment variable {self.api_key_env} (the API key) is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def complete(self, messages: list[dict]) -> str:
        body = json.dumps(
            {"model": self.model, "messages": messages, "temperature": self.temperature, "max_tokens": self.max_tokens}
        ).encode()
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=body, headers=self._headers(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            if any(h in detail.lower() for h in _CONTEXT_HINTS):
                raise GenerationError("context", f"the server refused the prompt as too long: {detail[:300]}") from None
            raise GenerationError(
                "down" if exc.code >= 500 else "bad-response", f"HTTP {exc.code}: {detail[:300]}"
            ) from None
        except TimeoutError:
            raise GenerationError("timeout", f"no answer from {self.base_url} within {self.timeout_s:g} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise GenerationError(
                    "timeout", f"no answer from {self.base_url} within {self.timeout_s:g} s"
                ) from None
            raise GenerationError("down", f"{self.base_url} cannot be reached: {exc.reason}") from None
        except OSError as exc:
            raise GenerationError("down", f"{self.base_url} cannot be reached: {exc}") from None
        try:
            data: Any = json.loads(payload)
            return str(data["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise GenerationError(
                "bad-response", f"the server's reply is not a chat completion: {payload[:200]!r}"
            ) from None

    def generate(
        self, query: str, passages: list[RetrievedPassage], *, policy: str = DEFAULT_POLICY, threshold: float = 0.0
    ) -> Answer:
        return parse_answer(self.complete(build_messages(query, passages, policy=policy)), passages)
