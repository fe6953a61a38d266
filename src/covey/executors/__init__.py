"""Where a session's loop runs: in the host process (`local`), or on a Ray node (`ray`),
whose writes reach the user's store through `replica` (layer 4, beside `sessions/`)."""
