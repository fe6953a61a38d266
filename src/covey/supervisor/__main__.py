"""`python -m covey.supervisor`: run the supervisor daemon (normally via ensure_supervisor)."""

from covey.supervisor.lifecycle import main

main()
