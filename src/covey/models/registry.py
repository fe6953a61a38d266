"""Turn a `--model` string into a `Model`: aliases, provider prefixes, credentials.

sonnet | opus | haiku      aliases, mapped per provider (settings `modelAliases`)
anthropic:<id>             Anthropic Messages API (ANTHROPIC_API_KEY / _AUTH_TOKEN / _BASE_URL)
openai:<id>                any OpenAI-compatible chat-completions endpoint (OPENAI_*)
scripted:<path>            deterministic replay of a script file, offline
claude-<id>                a bare Claude model id: anthropic:claude-<id>
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from covey.errors import CredentialsError, UserError

if TYPE_CHECKING:  # checking a model string (a dispatch, a listing) loads neither
    from covey.models.base import Model
    from covey.models.ratelimit import RateLimiter
    from covey.models.retry import RetryNotice, RetryPolicy

__all__ = [
    "BASE_URL_VARS",
    "DEFAULT_ALIASES",
    "DEFAULT_MODEL",
    "MISSING_KEY",
    "PROVIDERS",
    "check_model",
    "parse_model",
    "resolve_model",
]

DEFAULT_ALIASES = {
    "sonnet": "anthropic:claude-sonnet-4-5",
    "opus": "anthropic:claude-opus-4-5",
    "haiku": "anthropic:claude-haiku-4-5",
}
DEFAULT_MODEL = "sonnet"
PROVIDERS = ("anthropic", "openai", "scripted")
"""The `provider:` prefixes `resolve_model` knows."""
BASE_URL_VARS = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}
"""The variable naming each provider's endpoint (recorded with a background session)."""

_FORMS = "an alias (sonnet, opus, haiku), anthropic:<id>, openai:<id> or scripted:<path>"
MISSING_KEY = {
    "anthropic": 'ANTHROPIC_API_KEY is not set: export it, or put it in the settings "env" block',
    "openai": 'OPENAI_API_KEY is not set: export it, or put it in the settings "env" block '
    "(a local server needs only OPENAI_BASE_URL)",
}
"""What to say when a provider has no credentials."""


def parse_model(spec: str, aliases: Mapping[str, str] | None = None) -> tuple[str, str]:
    """`(provider, id)` of a `--model` string after aliases; a UserError for a bad one.
    Nothing is imported or read: a listing or a dispatch can check a model cheaply."""
    table = {**DEFAULT_ALIASES, **(aliases or {})}
    spec = table.get(spec, spec)
    if spec.startswith("claude-") and ":" not in spec:
        spec = f"anthropic:{spec}"  # a bare Claude model id, as the Claude Agent SDK passes
    provider, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise UserError(f"--model {spec!r} is not a model: use {_FORMS}")
    if provider not in PROVIDERS:
        raise UserError(f"--model {spec!r}: unknown provider {provider!r}; use {_FORMS}")
    return provider, rest


def check_model(
    spec: str, *, env: Mapping[str, str], aliases: Mapping[str, str] | None = None
) -> str:
    """Everything `resolve_model` checks (the form, the credentials in `env`, a script's
    file) without building a client; the model's name (`anthropic:claude-…`)."""
    provider, rest = parse_model(spec, aliases)
    if provider == "anthropic" and not (
        env.get("ANTHROPIC_API_KEY") or env.get("ANTHROPIC_AUTH_TOKEN")
    ):
        raise CredentialsError(MISSING_KEY["anthropic"])
    if provider == "openai" and not (env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL")):
        raise CredentialsError(MISSING_KEY["openai"])
    if provider == "scripted":
        from covey.models.script import load_script

        load_script(rest)
    return f"{provider}:{rest}"


def resolve_model(
    spec: str,
    *,
    env: Mapping[str, str],
    aliases: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
    on_retry: Callable[[RetryNotice], None] | None = None,
    limiter: RateLimiter | None = None,
) -> Model:
    """A client for `spec`. `limiter`: the shared rate limiter its requests go through."""
    from covey.models.retry import RetryPolicy

    provider, rest = parse_model(spec, aliases)
    policy = retry or RetryPolicy()
    if provider == "anthropic":
        from covey.models.anthropic import AnthropicModel

        return AnthropicModel.from_env(rest, env, retry=policy, on_retry=on_retry, limiter=limiter)
    if provider == "openai":
        from covey.models.openai import OpenAIModel

        return OpenAIModel.from_env(rest, env, retry=policy, on_retry=on_retry, limiter=limiter)
    from covey.models.scripted import ScriptedModel

    return ScriptedModel.from_path(rest)
