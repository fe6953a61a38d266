"""The user's word to one teammate (a reply typed under its row in the agent view): mail in
the team's mailbox from `USER`, which reaches the teammate before its next model call, or
wakes it when it waits idle for mail. Its lead's host sees mail from another process within
`covey.teams.bell.POLL_S`. A teammate that has ended reads no mail: refused."""

from __future__ import annotations

from covey.errors import UserError
from covey.sessions.state import TERMINAL_STATES
from covey.store import Store
from covey.store.sessions import get_session
from covey.store.teams import MailRow, get_team, member_of_session, send_message

__all__ = ["USER", "tell_teammate"]

USER = "the user"
"""The sender of the user's mail (a space: no member can be named so)."""


def tell_teammate(store: Store, session_id: str, text: str) -> MailRow:
    """Queue `text` for the teammate whose session is `session_id`; the mail row."""
    if not text.strip():
        raise UserError("reply: the text is empty; say what the teammate should hear")
    with store.write() as conn:
        row = get_session(conn, session_id)
        member = member_of_session(conn, session_id)
        if row is None or member is None or row.kind != "teammate":
            raise UserError(f"session {session_id} is not a teammate")
        team = get_team(conn, member.team_id)
        if row.state in TERMINAL_STATES or team is None or team.ended_at is not None:
            raise UserError(
                f"teammate {member.name} has ended ({row.state}): nobody reads its mail; "
                f"tell its lead {row.parent_id} instead"
            )
        (mail,) = send_message(conn, member.team_id, USER, member.name, text)
    return mail
