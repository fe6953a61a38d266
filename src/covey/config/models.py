"""The settings models: one msgspec Struct per component (`permissions`, `retries`…), each
field documented by the docstring under it (tests/test_config.py checks).

msgspec, not pydantic: a dispatch and a listing validate settings without importing pydantic
(about half of their start-up). `msgspec.convert(data, Settings)` checks types strictly
(no `"1"` for 1, no `true` for 1) and the `Meta` bounds; `__post_init__` checks what is more
than a type (rules, paths, the Ray address) and raises `ValueError("<key>: <reason>")`, which
`covey.config.errors` turns into the one-line message naming the file and the key. Unknown keys
are ignored here; the loader warns about them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Self

import msgspec
from msgspec import Meta, field

from covey.config.rules import check_ray_address, check_relative_path, check_rule

__all__ = [
    "BackgroundSettings",
    "BudgetSettings",
    "ModelPrice",
    "PermissionMode",
    "PermissionSettings",
    "ProviderRateLimits",
    "RateLimitSettings",
    "RaySettings",
    "RetrySettings",
    "SandboxSettings",
    "Section",
    "Settings",
    "SubagentSettings",
    "TeamSettings",
    "ToolSettings",
    "WorktreeSettings",
]

PermissionMode = Literal["default", "acceptEdits", "plan", "dontAsk", "bypassPermissions"]


class Section(msgspec.Struct, kw_only=True):
    """A settings object. `model_validate` and `model_copy` keep the names the pydantic models
    had, so code that validates or copies settings reads the same."""

    @classmethod
    def model_validate(cls, data: object) -> Self:
        """`data` (JSON-like) as this section; `msgspec.ValidationError` when it does not fit."""
        return msgspec.convert(data, cls)

    def model_copy(self, *, update: Mapping[str, Any]) -> Self:
        """A copy with some fields replaced (not validated again)."""
        return msgspec.structs.replace(self, **update)


def _checked(values: list[str], key: str, check: Callable[[str], str]) -> list[str]:
    """Each value through `check`; the first bad one as `ValueError("<key>[i]: <reason>")`."""
    out = []
    for i, value in enumerate(values):
        try:
            out.append(check(value))
        except ValueError as e:
            raise ValueError(f"{key}[{i}]: {e}") from None
    return out


class PermissionSettings(Section):
    """What tools may do without asking (`permissions` in settings.json)."""

    allow: list[str] = []
    """Rules for tool calls that run without asking, e.g. `Bash(npm test)`, `Edit(src/**)`."""
    ask: list[str] = []
    """Rules for tool calls that always ask first (in dontAsk mode: are denied)."""
    deny: list[str] = []
    """Rules for tool calls that never run; a deny in any file wins over any allow."""
    defaultMode: PermissionMode | None = None
    """The permission mode a session starts in; None means `default`."""
    additionalDirectories: list[str] = []
    """More directories the agent may work in (relative ones are under the project root)."""

    def __post_init__(self) -> None:
        self.allow, self.ask, self.deny = (
            _checked(self.allow, "allow", check_rule),
            _checked(self.ask, "ask", check_rule),
            _checked(self.deny, "deny", check_rule),
        )


class SandboxSettings(Section):
    """Isolation for Bash commands (`sandbox`)."""

    enabled: bool = False
    """Run Bash commands inside a sandbox (bubblewrap)."""
    network: bool = True
    """Whether sandboxed commands may use the network."""


class ToolSettings(Section):
    """What the commands that tools and hooks run may see (`tools`)."""

    passCredentials: bool = False
    """Let Bash commands and command hooks see covey's provider credentials
    (`ANTHROPIC_API_KEY`, `ANTHROPIC_AUTH_TOKEN`, any `ANTHROPIC_*KEY`, `OPENAI_API_KEY`, and the
    keys of `$COVEY_HOME/credentials.json` or the settings `env`). Off (the default), they are
    removed from those commands' environment, so output the model reads cannot leak them."""


class RetrySettings(Section):
    """Retries of failed model requests (`retries`)."""

    maxRetries: Annotated[int, Meta(ge=0, le=100)] = 10
    """How many times a failed model request is retried (5xx, 529, 429, dropped connections)."""
    initialDelay: Annotated[float, Meta(ge=0)] = 0.5
    """Seconds before the first retry; each later retry doubles it, with jitter."""
    maxDelay: Annotated[float, Meta(ge=0)] = 32.0
    """The longest wait between two retries, in seconds (a `retry-after` header may exceed it)."""


class ProviderRateLimits(Section):
    """Limits of one provider's endpoint known up front (`rateLimits.anthropic`, `.openai`),
    for every session of the user together; they add to what the response headers say."""

    requestsPerMinute: Annotated[int, Meta(gt=0)] | None = None
    """Requests per minute."""
    inputTokensPerMinute: Annotated[int, Meta(gt=0)] | None = None
    """Input tokens per minute (a request reserves its estimated size before it goes)."""
    outputTokensPerMinute: Annotated[int, Meta(gt=0)] | None = None
    """Output tokens per minute (a request waits while none are left)."""
    tokensPerMinute: Annotated[int, Meta(gt=0)] | None = None
    """Input and output tokens together per minute (OpenAI's TPM)."""


class RateLimitSettings(Section):
    """The one rate limiter all sessions of the user share (`rateLimits`)."""

    enabled: bool = True
    """Off: each session sends as it likes and only retries its own 429s."""
    anthropic: ProviderRateLimits = field(default_factory=ProviderRateLimits)
    """Limits of the Anthropic endpoint, besides those its headers report."""
    openai: ProviderRateLimits = field(default_factory=ProviderRateLimits)
    """Limits of the OpenAI-compatible endpoint, besides those its headers report."""


class WorktreeSettings(Section):
    """Worktrees made by `covey -w` (`worktree`)."""

    baseRef: Literal["fresh", "head"] = "fresh"
    """Where a new worktree starts: `fresh` = the remote's default branch (origin/HEAD, fetched
    when older than a day; local HEAD when there is no remote), `head` = local HEAD."""
    pool: Annotated[int, Meta(ge=0, le=64)] = 0
    """How many ready worktrees to keep checked out at the base, so `covey -w` skips the
    checkout; 0 turns the pool off."""
    symlinkDirectories: list[str] = []
    """Directories of the main checkout linked (not copied) into each worktree, e.g.
    `node_modules`."""
    sparsePaths: list[str] = []
    """When set, worktrees check out only these directories (cone-mode sparse checkout)."""

    def __post_init__(self) -> None:
        self.symlinkDirectories = _checked(
            self.symlinkDirectories, "symlinkDirectories", check_relative_path
        )
        self.sparsePaths = _checked(self.sparsePaths, "sparsePaths", check_relative_path)


class SubagentSettings(Section):
    """Subagents started by the Agent tool (`subagents`)."""

    maxDepth: Annotated[int, Meta(ge=0, le=8)] = 1
    """How deep subagents may nest: 1 = the main agent may spawn, subagents get no Agent tool;
    0 = no Agent tool at all."""
    maxConcurrent: Annotated[int, Meta(ge=1, le=1000)] = 10
    """How many subagents run at once in a session; extra spawns wait in a queue."""
    listBudgetChars: Annotated[int, Meta(ge=0, le=1_000_000)] = 8_000
    """Characters the list of agent types may take in the Agent tool's description, sent with
    every request: each type gets the first sentence of its description (at most 120
    characters); past the budget, names only, grouped by scope. Every type stays usable."""


class TeamSettings(Section):
    """Agent teams (`teams`), on with `COVEY_EXPERIMENTAL_AGENT_TEAMS=1`."""

    maxTeammates: Annotated[int, Meta(ge=1, le=100)] = 8
    """How many teammates one lead may start."""


class RaySettings(Section):
    """The Ray cluster background sessions run on (`background.ray`), when
    `background.executor` is `ray`."""

    address: str = "auto"
    """The head node's GCS address, `HOST:PORT` as `ray start --head` printed it, or `auto`
    (`RAY_ADDRESS`, else the cluster started last on this machine)."""
    maxSessionsPerNode: Annotated[int, Meta(ge=1, le=10_000)] = 64
    """How many sessions one node hosts at most; a new session waits (queued) while every node
    is full."""

    def __post_init__(self) -> None:
        try:
            self.address = check_ray_address(self.address)
        except ValueError as e:
            raise ValueError(f"address: {e}") from None


class BackgroundSettings(Section):
    """Background sessions hosted by the supervisor (`background`)."""

    autoResume: bool = True
    """On start, the supervisor resumes the sessions that were working when its predecessor
    died; off: they show `interrupted` until attached, replied to or respawned."""
    idleExitMinutes: Annotated[float, Meta(ge=0)] = 10.0
    """The supervisor exits after this long with nothing to host (user settings only; 0 =
    never); the next command that needs it starts it again."""
    executor: Literal["local", "ray"] = "local"
    """Where background sessions run (user settings only): `local`, in the supervisor;
    `ray`, on the nodes of the Ray cluster `background.ray.address` (`pip install 'covey[ray]'`)."""
    ray: RaySettings = field(default_factory=RaySettings)
    """The Ray cluster: its address and how many sessions a node takes."""


class ModelPrice(Section):
    """The price of one model (or `prefix*` of models) in USD per million tokens (`pricing`)."""

    input: Annotated[float, Meta(ge=0)]
    """Uncached input tokens."""
    output: Annotated[float, Meta(ge=0)]
    """Output tokens."""
    cacheWrite: Annotated[float, Meta(ge=0)]
    """Input tokens written to the prompt cache."""
    cacheRead: Annotated[float, Meta(ge=0)]
    """Input tokens read from the prompt cache."""


class BudgetSettings(Section):
    """Spend limits in USD, priced like `covey usage` (`budget`); null: no limit."""

    sessionUsd: Annotated[float, Meta(gt=0)] | None = None
    """What one session may spend, its subagents and teammates included (`--max-budget-usd`
    sets it for one run)."""
    dailyUsd: Annotated[float, Meta(gt=0)] | None = None
    """What all sessions of the user may spend together per local day, across processes."""

    def __post_init__(self) -> None:
        for name in ("sessionUsd", "dailyUsd"):
            if not math.isfinite(getattr(self, name) or 0):
                raise ValueError(f"{name}: must be a finite number of USD or null")


class Settings(Section):
    """One settings file, or all of them merged."""

    permissions: PermissionSettings = field(default_factory=PermissionSettings)
    """Permission rules and the default mode."""
    env: dict[str, str] = {}
    """Environment variables set for the session; they win over the inherited environment."""
    model: str | None = None
    """The model to use: an alias (`sonnet`) or `provider:model-id`."""
    modelAliases: dict[str, str] = {}
    """Aliases to models, e.g. {"sonnet": "openai:gpt-5"}; merged over the built-in ones."""
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    """How Bash commands are isolated."""
    tools: ToolSettings = field(default_factory=ToolSettings)
    """What Bash commands and hooks may see of covey's credentials."""
    retries: RetrySettings = field(default_factory=RetrySettings)
    """How model requests are retried."""
    rateLimits: RateLimitSettings = field(default_factory=RateLimitSettings)
    """The shared rate limiter: on or off, and limits known up front per provider."""
    hooks: dict[str, Any] = {}
    """Command hooks by event, in Claude Code's shape (kept as-is here)."""
    autoCompactWindow: Annotated[int, Meta(gt=0)] | None = None
    """Tokens of context at which the conversation is compacted; None: near the model's limit."""
    worktree: WorktreeSettings = field(default_factory=WorktreeSettings)
    """How `covey -w` makes worktrees: base, pool, symlinked and sparse directories."""
    subagents: SubagentSettings = field(default_factory=SubagentSettings)
    """Nesting depth and concurrency of subagents."""
    teams: TeamSettings = field(default_factory=TeamSettings)
    """Agent teams (experimental): how many teammates a lead may start."""
    pricing: dict[str, ModelPrice] = {}
    """Prices by model id (or `prefix*`), merged over the built-in table; they apply to usage
    recorded from then on, e.g. {"claude-sonnet-4*": {"input": 3, "output": 15,
    "cacheWrite": 3.75, "cacheRead": 0.3}}."""
    background: BackgroundSettings = field(default_factory=BackgroundSettings)
    """Background sessions: whether the supervisor resumes interrupted ones on start."""
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    """Spend limits per session and per day; a session stops before a request they cannot
    cover."""
