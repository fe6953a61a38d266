"""Settings files: one pydantic model per component, loaded and merged by precedence.

Highest precedence first: CLI overrides > `<project>/.covey/settings.local.json` >
`<project>/.covey/settings.json` > `$COVEY_HOME/settings.json`. Each file is validated on its
own, so an error names the file; then they merge: objects deeply, arrays concatenated without
duplicates (so a deny anywhere survives), scalars from the highest layer. Unknown keys are
kept and reported as warnings. Keys are camelCase, as in Claude Code's settings.json.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from covey.errors import CredentialsError, UserError
from covey.home import covey_home

__all__ = [
    "SETTING_SOURCES",
    "BackgroundSettings",
    "BudgetSettings",
    "LoadedSettings",
    "ModelPrice",
    "PermissionMode",
    "PermissionSettings",
    "ProviderRateLimits",
    "RateLimitSettings",
    "RaySettings",
    "RetrySettings",
    "SandboxSettings",
    "Settings",
    "SubagentSettings",
    "TeamSettings",
    "ToolSettings",
    "WorktreeSettings",
    "covey_home",
    "credential_names",
    "credentials_path",
    "effective_env",
    "find_project_root",
    "load_credentials",
    "load_settings",
    "split_permission_rule",
    "user_settings",
]

PermissionMode = Literal["default", "acceptEdits", "plan", "dontAsk", "bypassPermissions"]

_NAME = re.compile(r"[A-Za-z0-9_.*-]+")
_MCP_GLOB = re.compile(r"mcp__[A-Za-z0-9_.-]+__[A-Za-z0-9_.*-]*")


def split_permission_rule(rule: str) -> tuple[str, str | None]:
    """`"Bash(git *)"` → `("Bash", "git *")`, `"Read"` → `("Read", None)`.

    Raises ValueError with a one-line reason when the rule is malformed.
    """
    text = rule.strip()
    if not text:
        raise ValueError("empty rule")
    if "(" not in text and ")" not in text:
        name, spec = text, None
    else:
        i = text.find("(")
        if i < 0 or not text.endswith(")") or not _balanced(text[i + 1 : -1]):
            raise ValueError(f"unbalanced parentheses in rule {text!r}; write Tool(specifier)")
        name, spec = text[:i], text[i + 1 : -1]
        if not spec.strip():
            raise ValueError(f"empty specifier in rule {text!r}; write {name!r} for every call")
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid tool name {name!r} in rule {text!r}")
    if "*" in name and not _MCP_GLOB.fullmatch(name):
        raise ValueError(f"'*' in rule {text!r}: tool names take '*' only after mcp__<server>__")
    return name, spec


def _balanced(spec: str) -> bool:
    depth = 0
    for ch in spec:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _check_rule(rule: str) -> str:
    split_permission_rule(rule)
    return rule.strip()


PermissionRule = Annotated[str, AfterValidator(_check_rule)]
_MODEL = ConfigDict(extra="allow", strict=True)
"""Every field is documented by the docstring under it (tests/test_config.py checks). They are
not handed to pydantic (`use_attribute_docstrings`): reading them back from the source costs
~30 ms of every start-up, and nothing at run time shows them."""


class PermissionSettings(BaseModel):
    """What tools may do without asking (`permissions` in settings.json)."""

    model_config = _MODEL
    allow: list[PermissionRule] = Field(default_factory=list)
    """Rules for tool calls that run without asking, e.g. `Bash(npm test)`, `Edit(src/**)`."""
    ask: list[PermissionRule] = Field(default_factory=list)
    """Rules for tool calls that always ask first (in dontAsk mode: are denied)."""
    deny: list[PermissionRule] = Field(default_factory=list)
    """Rules for tool calls that never run; a deny in any file wins over any allow."""
    defaultMode: PermissionMode | None = None
    """The permission mode a session starts in; None means `default`."""
    additionalDirectories: list[str] = Field(default_factory=list)
    """More directories the agent may work in (relative ones are under the project root)."""


class SandboxSettings(BaseModel):
    """Isolation for Bash commands (`sandbox`)."""

    model_config = _MODEL
    enabled: bool = False
    """Run Bash commands inside a sandbox (bubblewrap)."""
    network: bool = True
    """Whether sandboxed commands may use the network."""


class ToolSettings(BaseModel):
    """What the commands that tools and hooks run may see (`tools`)."""

    model_config = _MODEL
    passCredentials: bool = False
    """Let Bash commands and command hooks see covey's provider credentials
    (`ANTHROPIC_API_KEY`, `ANTHROPIC_AUTH_TOKEN`, any `ANTHROPIC_*KEY`, `OPENAI_API_KEY`, and the
    keys of `$COVEY_HOME/credentials.json` or the settings `env`). Off (the default), they are
    removed from those commands' environment, so output the model reads cannot leak them."""


class RetrySettings(BaseModel):
    """Retries of failed model requests (`retries`)."""

    model_config = _MODEL
    maxRetries: int = Field(default=10, ge=0, le=100)
    """How many times a failed model request is retried (5xx, 529, 429, dropped connections)."""
    initialDelay: float = Field(default=0.5, ge=0)
    """Seconds before the first retry; each later retry doubles it, with jitter."""
    maxDelay: float = Field(default=32.0, ge=0)
    """The longest wait between two retries, in seconds (a `retry-after` header may exceed it)."""


class ProviderRateLimits(BaseModel):
    """Limits of one provider's endpoint known up front (`rateLimits.anthropic`, `.openai`),
    for every session of the user together; they add to what the response headers say."""

    model_config = _MODEL
    requestsPerMinute: int | None = Field(default=None, gt=0)
    """Requests per minute."""
    inputTokensPerMinute: int | None = Field(default=None, gt=0)
    """Input tokens per minute (a request reserves its estimated size before it goes)."""
    outputTokensPerMinute: int | None = Field(default=None, gt=0)
    """Output tokens per minute (a request waits while none are left)."""
    tokensPerMinute: int | None = Field(default=None, gt=0)
    """Input and output tokens together per minute (OpenAI's TPM)."""


class RateLimitSettings(BaseModel):
    """The one rate limiter all sessions of the user share (`rateLimits`)."""

    model_config = _MODEL
    enabled: bool = True
    """Off: each session sends as it likes and only retries its own 429s."""
    anthropic: ProviderRateLimits = Field(default_factory=ProviderRateLimits)
    """Limits of the Anthropic endpoint, besides those its headers report."""
    openai: ProviderRateLimits = Field(default_factory=ProviderRateLimits)
    """Limits of the OpenAI-compatible endpoint, besides those its headers report."""


def _check_relative_path(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    if not path.strip() or path.startswith(("/", "~")) or ".." in parts:
        raise ValueError(f"{path!r} must be a path inside the repository, like 'node_modules'")
    return path.strip().strip("/")


RepoPath = Annotated[str, AfterValidator(_check_relative_path)]


class WorktreeSettings(BaseModel):
    """Worktrees made by `covey -w` (`worktree`)."""

    model_config = _MODEL
    baseRef: Literal["fresh", "head"] = "fresh"
    """Where a new worktree starts: `fresh` = the remote's default branch (origin/HEAD, fetched
    when older than a day; local HEAD when there is no remote), `head` = local HEAD."""
    pool: int = Field(default=0, ge=0, le=64)
    """How many ready worktrees to keep checked out at the base, so `covey -w` skips the
    checkout; 0 turns the pool off."""
    symlinkDirectories: list[RepoPath] = Field(default_factory=list)
    """Directories of the main checkout linked (not copied) into each worktree, e.g.
    `node_modules`."""
    sparsePaths: list[RepoPath] = Field(default_factory=list)
    """When set, worktrees check out only these directories (cone-mode sparse checkout)."""


class SubagentSettings(BaseModel):
    """Subagents started by the Agent tool (`subagents`)."""

    model_config = _MODEL
    maxDepth: int = Field(default=1, ge=0, le=8)
    """How deep subagents may nest: 1 = the main agent may spawn, subagents get no Agent tool;
    0 = no Agent tool at all."""
    maxConcurrent: int = Field(default=10, ge=1, le=1000)
    """How many subagents run at once in a session; extra spawns wait in a queue."""
    listBudgetChars: int = Field(default=8_000, ge=0, le=1_000_000)
    """Characters the list of agent types may take in the Agent tool's description, sent with
    every request: each type gets the first sentence of its description (at most 120
    characters); past the budget, names only, grouped by scope. Every type stays usable."""


class TeamSettings(BaseModel):
    """Agent teams (`teams`), on with `COVEY_EXPERIMENTAL_AGENT_TEAMS=1`."""

    model_config = _MODEL
    maxTeammates: int = Field(default=8, ge=1, le=100)
    """How many teammates one lead may start."""


def _check_ray_address(address: str) -> str:
    host, sep, port = address.strip().rpartition(":")
    if address.strip() == "auto" or (
        sep and host and port.isdigit() and 0 < int(port) < 65536 and " " not in host
    ):
        return address.strip()
    raise ValueError(f'{address!r} must be "auto" or the head\'s HOST:PORT, like 127.0.0.2:6390')


RayAddress = Annotated[str, AfterValidator(_check_ray_address)]


class RaySettings(BaseModel):
    """The Ray cluster background sessions run on (`background.ray`), when
    `background.executor` is `ray`."""

    model_config = _MODEL
    address: RayAddress = "auto"
    """The head node's GCS address, `HOST:PORT` as `ray start --head` printed it, or `auto`
    (`RAY_ADDRESS`, else the cluster started last on this machine)."""
    maxSessionsPerNode: int = Field(default=64, ge=1, le=10_000)
    """How many sessions one node hosts at most; a new session waits (queued) while every node
    is full."""


class BackgroundSettings(BaseModel):
    """Background sessions hosted by the supervisor (`background`)."""

    model_config = _MODEL
    autoResume: bool = True
    """On start, the supervisor resumes the sessions that were working when its predecessor
    died; off: they show `interrupted` until attached, replied to or respawned."""
    idleExitMinutes: float = Field(default=10.0, ge=0)
    """The supervisor exits after this long with nothing to host (user settings only; 0 =
    never); the next command that needs it starts it again."""
    executor: Literal["local", "ray"] = "local"
    """Where background sessions run (user settings only): `local`, in the supervisor;
    `ray`, on the nodes of the Ray cluster `background.ray.address` (`pip install 'covey[ray]'`)."""
    ray: RaySettings = Field(default_factory=RaySettings)
    """The Ray cluster: its address and how many sessions a node takes."""


class ModelPrice(BaseModel):
    """The price of one model (or `prefix*` of models) in USD per million tokens (`pricing`)."""

    model_config = _MODEL
    input: float = Field(ge=0)
    """Uncached input tokens."""
    output: float = Field(ge=0)
    """Output tokens."""
    cacheWrite: float = Field(ge=0)
    """Input tokens written to the prompt cache."""
    cacheRead: float = Field(ge=0)
    """Input tokens read from the prompt cache."""


class BudgetSettings(BaseModel):
    """Spend limits in USD, priced like `covey usage` (`budget`); null: no limit."""

    model_config = _MODEL
    sessionUsd: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """What one session may spend, its subagents and teammates included (`--max-budget-usd`
    sets it for one run)."""
    dailyUsd: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """What all sessions of the user may spend together per local day, across processes."""


class Settings(BaseModel):
    """One settings file, or all of them merged."""

    model_config = _MODEL
    permissions: PermissionSettings = Field(default_factory=PermissionSettings)
    """Permission rules and the default mode."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables set for the session; they win over the inherited environment."""
    model: str | None = None
    """The model to use: an alias (`sonnet`) or `provider:model-id`."""
    modelAliases: dict[str, str] = Field(default_factory=dict)
    """Aliases to models, e.g. {"sonnet": "openai:gpt-5"}; merged over the built-in ones."""
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    """How Bash commands are isolated."""
    tools: ToolSettings = Field(default_factory=ToolSettings)
    """What Bash commands and hooks may see of covey's credentials."""
    retries: RetrySettings = Field(default_factory=RetrySettings)
    """How model requests are retried."""
    rateLimits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    """The shared rate limiter: on or off, and limits known up front per provider."""
    hooks: dict[str, Any] = Field(default_factory=dict)
    """Command hooks by event, in Claude Code's shape (kept as-is here)."""
    autoCompactWindow: int | None = Field(default=None, gt=0)
    """Tokens of context at which the conversation is compacted; None: near the model's limit."""
    worktree: WorktreeSettings = Field(default_factory=WorktreeSettings)
    """How `covey -w` makes worktrees: base, pool, symlinked and sparse directories."""
    subagents: SubagentSettings = Field(default_factory=SubagentSettings)
    """Nesting depth and concurrency of subagents."""
    teams: TeamSettings = Field(default_factory=TeamSettings)
    """Agent teams (experimental): how many teammates a lead may start."""
    pricing: dict[str, ModelPrice] = Field(default_factory=dict)
    """Prices by model id (or `prefix*`), merged over the built-in table; they apply to usage
    recorded from then on, e.g. {"claude-sonnet-4*": {"input": 3, "output": 15,
    "cacheWrite": 3.75, "cacheRead": 0.3}}."""
    background: BackgroundSettings = Field(default_factory=BackgroundSettings)
    """Background sessions: whether the supervisor resumes interrupted ones on start."""
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    """Spend limits per session and per day; a session stops before a request they cannot
    cover."""


@dataclass
class LoadedSettings:
    settings: Settings
    """The merged, validated settings."""
    project_root: Path
    """The nearest ancestor of the working directory holding `.covey/` or `.git`."""
    files: list[Path] = field(default_factory=list)
    """The settings files that existed, lowest precedence first."""
    warnings: list[str] = field(default_factory=list)
    """One line per unknown key."""
    overrides: dict[str, Any] | None = None
    """The command line's layer (`--settings`), on top of the files."""


def credentials_path() -> Path:
    return covey_home() / "credentials.json"


def load_credentials() -> dict[str, str]:
    """`$COVEY_HOME/credentials.json`: provider variables (`{"ANTHROPIC_API_KEY": "..."}`)
    for the supervisor. Missing file: {}. It must be readable by its owner only (0600)."""
    path = credentials_path()
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CredentialsError(f"{path}: cannot read it ({e.strerror})") from e
    if mode & 0o077:
        raise CredentialsError(
            f"{path} is readable by others (mode {mode & 0o777:o}): chmod 600 {path}"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CredentialsError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from e
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise CredentialsError(
            f'{path}: must be one object of strings, like {{"ANTHROPIC_API_KEY": "…"}}'
        )
    return data


_SECRET_NAME = re.compile(r"(?i).*(KEY|TOKEN|SECRET|PASSWORD)")


def credential_names(settings: Settings) -> frozenset[str]:
    """Credentials to keep from tools and hooks besides the provider variables
    (`proc.CREDENTIAL_VARS`): every key of `credentials.json` (an unreadable file gives none)
    and the keys of the settings `env` whose name says secret (`…KEY`, `…TOKEN`, `…SECRET`,
    `…PASSWORD`)."""
    try:
        stored = load_credentials()
    except CredentialsError:
        stored = {}
    named = {name for name in settings.env if _SECRET_NAME.fullmatch(name)}
    return frozenset(stored).union(named)


def find_project_root(cwd: Path) -> Path:
    """The nearest ancestor of `cwd` (itself included) with `.covey/` or `.git`, else `cwd`.

    A `.covey/` that is `$COVEY_HOME` (the usual `~/.covey`) does not make a project.
    """
    start = cwd.resolve()
    home = covey_home().resolve()
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
        marker = d / ".covey"
        if marker.is_dir() and marker.resolve() != home:
            return d
    return start


SETTING_SOURCES = ("user", "project", "local")
"""The settings layers `--setting-sources` names: `$COVEY_HOME/settings.json`,
`.covey/settings.json`, `.covey/settings.local.json`."""


def load_settings(
    cwd: Path,
    *,
    overrides: dict[str, Any] | None = None,
    sources: Sequence[str] | None = None,
) -> LoadedSettings:
    """Read, validate and merge every settings layer for a session started in `cwd`;
    `sources`: only these layers (of SETTING_SOURCES; None: all)."""
    root = find_project_root(cwd)
    loaded = LoadedSettings(Settings(), root)
    merged: dict[str, Any] = {}
    seen: set[Path] = set()
    layers = {
        "user": covey_home() / "settings.json",
        "project": root / ".covey" / "settings.json",
        "local": root / ".covey" / "settings.local.json",
    }
    for source, path in layers.items():
        if sources is not None and source not in sources:
            continue
        if (data := _read(path)) is None or (real := path.resolve()) in seen:
            continue
        seen.add(real)
        loaded.files.append(path)
        loaded.warnings += _validate(data, str(path))
        merged = _merge(merged, data)
    if overrides:
        loaded.overrides = overrides
        loaded.warnings += _validate(overrides, "command line")
        merged = _merge(merged, overrides)
    loaded.settings = Settings.model_validate(merged)
    return loaded


def user_settings() -> Settings:
    """The user layer alone (`$COVEY_HOME/settings.json`), for what is per user rather than
    per project (the supervisor). A bad file is a one-line UserError naming it."""
    data = _read(covey_home() / "settings.json")
    if data is None:
        return Settings()
    _validate(data, str(covey_home() / "settings.json"))
    return Settings.model_validate(data)


def effective_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for tools and providers: `environ` with the settings `env` block on top.

    As in Claude Code, the settings `env` applies to the process, so for the keys it names it
    wins over the inherited environment.
    """
    return {**environ, **settings.env}


def _read(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; save it as UTF-8 JSON") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: settings must be a JSON object (got {_kind(data)})")
    return data


def _validate(data: dict[str, Any], source: str) -> list[str]:
    """Validate one layer alone; raise a one-line UserError, or return unknown-key warnings."""
    try:
        model = Settings.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        n = len(errors) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''})" if n else ""
        raise UserError(f"{source}: {_describe_error(errors[0])}{more}") from None
    return [
        f"unknown key '{key}' in {source}; it is kept but ignored" for key in _unknown(model, "")
    ]


def _unknown(model: BaseModel, prefix: str) -> Iterator[str]:
    for key in model.model_extra or {}:
        yield prefix + key
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _unknown(value, f"{prefix}{name}.")


def _merge(low: Any, high: Any) -> Any:
    """`high` over `low`: objects merge deeply, arrays concatenate without duplicates."""
    if isinstance(high, dict):
        out = dict(low) if isinstance(low, dict) else {}
        for key, value in high.items():
            out[key] = _merge(out.get(key), value)
        return out
    if isinstance(high, list):
        out_list: list[Any] = []
        for item in (low if isinstance(low, list) else []) + high:
            if item not in out_list:
                out_list.append(item)
        return out_list
    return high


def _describe_error(err: ErrorDetails) -> str:
    loc = err["loc"]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if err["type"] == "value_error":  # a malformed permission rule
        return f"key {key}: {err.get('ctx', {}).get('error', err['msg'])}"
    ann, meta = _annotation_at(loc)
    expected = _expected(ann, meta) if ann is not None else err["msg"].lower()
    value = err["input"]
    wrong_type = err["type"].endswith(("_type", "_parsing")) or err["type"] == "literal_error"
    got = _kind(value) if wrong_type and err["type"] != "literal_error" else json.dumps(value)
    return f"key {key} must be {expected} (got {got})"


def _annotation_at(loc: tuple[int | str, ...]) -> tuple[Any, list[Any]]:
    ann: Any = Settings
    meta: list[Any] = []
    for part in loc:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            info = ann.model_fields.get(str(part))
            if info is None:
                return None, []
            ann, meta = info.annotation, list(info.metadata)
        elif get_origin(ann) in (list, dict):
            ann, meta = get_args(ann)[-1], []
        else:
            return None, []
        if get_origin(ann) is Annotated:
            ann = get_args(ann)[0]
    return ann, meta


def _expected(ann: Any, meta: list[Any]) -> str:
    origin, args = get_origin(ann), get_args(ann)
    if origin in (Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return f"{_expected(rest[0], meta)} or null"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (list, dict):
        inner = get_args(args[-1])[0] if get_origin(args[-1]) is Annotated else args[-1]
        what = "a list" if origin is list else "an object"
        return f"{what} of strings" if inner is str else what
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "an object"
    base = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}
    limits = {a: getattr(m, a) for m in meta for a in ("ge", "gt", "le", "lt") if hasattr(m, a)}
    text = base.get(ann, "any value")
    if "ge" in limits and "le" in limits:
        return f"{text} from {limits['ge']} to {limits['le']}"
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    bounds = " and ".join(f"{words[a]} {v}" for a, v in limits.items())
    return f"{text} {bounds}" if bounds else text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}
    return names.get(type(value), type(value).__name__)
