"""Where a session's loop runs: `local` (the supervisor's own TaskGroup) or `ray` (host actors on
the nodes of a Ray cluster, `ray*.py`), and the node-local replica store a remote session runs
against (`replica*.py`). Ray is imported only inside `ray*.py`, and only when the executor is
`ray`."""
