"""What every tool is: a name, a short description, a typed input, and an async `run`.

Tools get everything they need through a `ToolContext`; there are no globals. A tool signals
a problem the model should see by raising `ToolError`; its message becomes an error
tool_result and the run goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from covey.errors import ToolError
from covey.messages import INVALID_ARGUMENTS_KEY
from covey.models.base import ToolSpec

__all__ = ["AskUser", "FileOwners", "PathRules", "SandboxOptions", "Tool", "ToolContext"]
__all__ += ["ToolInput"]
__all__ += ["compact_schema"]

AskUser = Callable[[str, list[str]], Awaitable[str]]
"""Asks the person a question (with optional choices) and returns the answer."""


class ToolInput(BaseModel):
    """Base of tool inputs: unknown keys are refused so a typo reaches the model as an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PathRules(Protocol):
    """The permission rules a tool applies to the files it opens or lists itself."""

    def denied(self, kind: str, path: str) -> str | None:
        """The deny rule covering `kind` ("Read" or "Edit") of this real path, or None."""
        ...


@dataclass(frozen=True)
class SandboxOptions:
    enabled: bool = False
    network: bool = True
    pass_credentials: bool = False
    """`tools.passCredentials`: commands see covey's provider credentials."""
    credential_names: frozenset[str] = frozenset()
    """Variables removed from commands' environment besides `proc.CREDENTIAL_VARS`."""


class FileOwners(Protocol):
    """Who may change which files (agent teams' `owns`)."""

    def refusal(self, real: Path) -> str | None:
        """Why this agent may not Write/Edit the real path `real`, or None."""
        ...

    def writable(self) -> list[Path] | None:
        """The directories a sandboxed command of this agent may write in the workspace
        (made if missing); None: all of the workspace."""
        ...


class ToolRuns(Protocol):
    """Records tool processes while they run, so a host that takes a session over after a
    crash can kill what is left of them (`covey.proc.kill_tagged_group`)."""

    def started(self, pgid: int, tag: str) -> None: ...

    def ended(self, pgid: int, tag: str) -> None: ...


@dataclass
class ToolContext:
    workspace: Path
    """The directory the agent works in; every path a tool touches must resolve inside it
    (or inside one of `extra_dirs`)."""
    extra_dirs: list[Path] = field(default_factory=list)
    session_id: str = ""
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)
    ask_user: AskUser | None = None
    """None when nobody can answer (print mode): AskUserQuestion then tells the model so."""
    rules: PathRules | None = None
    """The session's permission rules (set by the tool runner): Read, Write and Edit check
    the path they really open, Glob and Grep leave out files a Read rule denies."""
    tool_runs: ToolRuns | None = None
    """Where the host records running tool processes (None: not recorded)."""
    file_owners: FileOwners | None = None
    """Team file ownership Write and Edit respect (None: no team)."""


InputT = TypeVar("InputT", bound=ToolInput)


class Tool(Generic[InputT]):
    """Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    description: ClassVar[str]
    input_model: ClassVar[type[ToolInput]]
    read_only: ClassVar[bool] = False
    """True when the tool changes nothing."""
    concurrent: ClassVar[bool] = False
    """True when consecutive calls of the tool in one turn may run at once; defaults to
    `read_only` (the Agent tool is concurrent but not read-only)."""
    edits_files: ClassVar[bool] = False
    """True for Write/Edit: what acceptEdits mode accepts and path rules apply to."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "concurrent" not in cls.__dict__:
            cls.concurrent = cls.read_only

    def spec(self) -> ToolSpec:
        return _spec_of(type(self))

    def read_only_for(self, tool_input: Mapping[str, Any]) -> bool:
        """Whether this call changes nothing (plan mode runs only such calls). Tools whose
        effect depends on the input (the Agent tool) refine it."""
        return self.read_only

    def parse(self, raw: dict[str, Any]) -> InputT:
        if INVALID_ARGUMENTS_KEY in raw:
            raise ToolError(
                f"the arguments for {self.name} were not a JSON object "
                f"({str(raw[INVALID_ARGUMENTS_KEY])[:200]!r}); call it again with valid JSON"
            )
        try:
            return self.input_model.model_validate(raw)  # type: ignore[return-value]
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in err['loc']) or 'input'}: {err['msg']}"
                for err in e.errors()
            )
            raise ToolError(f"invalid input for {self.name}: {problems}") from None

    def validate(self, args: InputT, ctx: ToolContext) -> None:
        """Checks that no permission can waive (a path outside the workspace), run before
        the permission check so a call that cannot succeed is never asked about."""

    async def run(self, args: InputT, ctx: ToolContext) -> str:
        raise NotImplementedError


_SPECS: dict[type, ToolSpec] = {}


def _spec_of(tool_class: type[Tool[Any]]) -> ToolSpec:
    """Schemas are built once per tool class, not on every request."""
    spec = _SPECS.get(tool_class)
    if spec is None:
        schema = compact_schema(tool_class.input_model)
        spec = _SPECS[tool_class] = ToolSpec(tool_class.name, tool_class.description, schema)
    return spec


def compact_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema without pydantic's titles: fewer bytes in every request."""
    schema = model.model_json_schema(by_alias=True)
    return _strip_titles(schema)  # type: ignore[no-any-return]


def _strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip_titles(v) for k, v in node.items() if k != "title" or not isinstance(v, str)
        }
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node
