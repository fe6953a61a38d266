"""`python -m covey.supervisor`: run the supervisor daemon (normally via ensure_supervisor)."""

from covey.supervisor.daemon import main

main()
