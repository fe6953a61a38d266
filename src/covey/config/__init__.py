"""Settings files: one msgspec Struct per component, loaded and merged by precedence.

Highest precedence first: CLI overrides > `<project>/.covey/settings.local.json` >
`<project>/.covey/settings.json` > `$COVEY_HOME/settings.json`. Each file is validated on its
own, so an error names the file; then they merge: objects deeply, arrays concatenated without
duplicates (so a deny anywhere survives), scalars from the highest layer. Unknown keys are
reported as warnings (and otherwise ignored). Keys are camelCase, as in Claude Code's
settings.json.

The parts: `models` (the settings models), `rules` (permission rules, repository paths, the
Ray address), `errors` (a validation error as one line naming the key), `loading` (reading,
validating, merging the files), `credentials` (`$COVEY_HOME/credentials.json`).
"""

from __future__ import annotations

from covey.config.credentials import credential_names, credentials_path, load_credentials
from covey.config.loading import (
    SETTING_SOURCES,
    LoadedSettings,
    effective_env,
    find_project_root,
    load_settings,
    user_settings,
)
from covey.config.models import (
    BackgroundSettings,
    BudgetSettings,
    ModelPrice,
    PermissionMode,
    PermissionSettings,
    ProviderRateLimits,
    RateLimitSettings,
    RaySettings,
    RetrySettings,
    SandboxSettings,
    Settings,
    SubagentSettings,
    TeamSettings,
    ToolSettings,
    WorktreeSettings,
)
from covey.config.rules import split_permission_rule
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
