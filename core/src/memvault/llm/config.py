"""LLM settings: memvault's native form and mem0's ``llm.config`` keys.

Why one model: every option (base URL, key from env, timeouts, the Responses API,
the flex service tier) means the same whether it came from mem0's config shape
or ours, and a typo is a ``ConfigError`` rather than an ignored key.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from memvault.errors import ConfigError

#: mem0 spellings -> ours.
_ALIASES = {
    "openai_base_url": "base_url",
    "ollama_base_url": "base_url",
    "vllm_base_url": "base_url",
    "lmstudio_base_url": "base_url",
    "deepseek_base_url": "base_url",
    "max_completion_tokens": "max_tokens",
}
#: mem0 keys accepted and ignored (no meaning for an OpenAI-compatible client).
_IGNORED = (
    "top_k",
    "enable_vision",
    "vision_details",
    "http_client_proxies",
    "models",
    "route",
    "site_url",
    "app_name",
    "reasoning_effort_level",
)
_DEFAULT_BASE = {"ollama": "http://127.0.0.1:11434/v1", "lmstudio": "http://127.0.0.1:1234/v1"}


class LLMSettings(BaseModel):
    """How to reach the LLM. Any OpenAI-compatible endpoint works."""

    model_config = ConfigDict(extra="forbid")

    model: str = "gpt-4.1-mini"
    base_url: str | None = None
    api_key: str | None = Field(None, repr=False)
    api_key_env: str = "OPENAI_API_KEY"
    api: Literal["chat", "responses"] = "chat"
    temperature: float | None = 0.0
    top_p: float | None = None
    max_tokens: int | None = 2000
    timeout: float = 60.0
    max_retries: int = 3
    service_tier: str | None = None
    json_mode: bool = True
    reasoning_effort: str | None = None
    extra_headers: dict[str, str] = Field(default_factory=dict)
    #: Stream chat completions and stop reading once the answer repeats itself
    #: (``memvault.llm.repeats``). Why: small local models loop until ``max_tokens``
    #: (issue 16), ~90 s of useless generation per add at CPU speed. Opt-in because it
    #: changes the request (``stream=True``): token usage may then be an estimate (see
    #: ``Usage.estimated_calls``), and a proxy that buffers or rejects streams gains nothing.
    #: Endpoints that refuse streaming, or answer it with a plain body, are asked again
    #: without it (remembered). ``timeout`` bounds the whole streamed answer, as it does a
    #: plain one, not only the gap between two chunks.
    #: The Responses API and the Batch API are never streamed.
    stop_repeats: bool = False

    def resolved_api_key(self) -> str:
        key = self.api_key or os.environ.get(self.api_key_env)
        if key:
            return key
        if self.base_url:  # local servers (Ollama, vLLM) accept any key
            return "not-needed"
        raise ConfigError(
            f"no API key for the LLM: set {self.api_key_env} or pass llm.config.api_key "
            "(or a base_url for a local server)"
        )

    @property
    def effective_timeout(self) -> float:
        # The flex tier queues requests: give them the long timeout they need.
        return max(self.timeout, 900.0) if self.service_tier == "flex" else self.timeout


def parse_llm_settings(provider: str, config: dict[str, Any]) -> LLMSettings:
    data = {_ALIASES.get(k, k): v for k, v in config.items() if k not in _IGNORED}
    if "base_url" not in data and provider in _DEFAULT_BASE:
        data["base_url"] = _DEFAULT_BASE[provider]
    try:
        return LLMSettings.model_validate(data)
    except PydanticValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "llm.config"
        raise ConfigError(f"invalid llm config at {where}: {first['msg']}") from e
