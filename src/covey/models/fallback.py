"""`--fallback-model`: a model that goes on with another one when its own fails.

The main model's adapter retries what is worth retrying (`covey.models.retry`); when it still
fails with a `ModelError` (overloaded, a server error, a dropped stream...), the same request
goes to the fallback model, which answers this and every later request of the session. A
context overflow is not a model failure (the conversation is too long for any model) and is
raised as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from covey.errors import ContextOverflowError, ModelError
from covey.models.base import Model, ModelRequest, ModelResponse, TextSink

__all__ = ["FallbackModel"]


class FallbackModel:
    def __init__(self, main: Model, make_fallback: Callable[[], Model]) -> None:
        self.current = main
        self._make_fallback: Callable[[], Model] | None = make_fallback

    @property
    def name(self) -> str:
        return self.current.name

    @property
    def context_window(self) -> int:
        return self.current.context_window

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        try:
            return await self.current.complete(request, on_text)
        except ContextOverflowError:
            raise
        except ModelError:
            if self._make_fallback is None:
                raise
            self.current, self._make_fallback = self._make_fallback(), None
            return await self.current.complete(request, on_text)
