"""Where a session's loop runs: in the host process (`local`), or on a Ray node (`ray`: host
actors on the nodes of a cluster, `ray*.py`), whose writes reach the user's store through
`replica` (layer 4, beside `sessions/`). Ray is imported only inside `ray*.py`, and only when
the executor is `ray`."""
