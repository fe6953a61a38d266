"""CPU of one model request in the calling process, through each real adapter over HTTP and
through the scripted model, by conversation length.

    .venv/bin/python bench/adapter.py [--requests 100] [--history 0,20,100,200]
        [--providers scripted,anthropic,openai] [--clients h11,httpx] [--profile out.prof]

For each provider and history length H, one event loop sends `--requests` identical requests:
a ~7 KB system prompt, 10 tool definitions, then H past turns (an assistant text + a `Read`
tool call, the user's tool result of ~2 KB) and the new prompt, so H = 200 is a ~0.5 MB body,
as a long session sends. The real adapters talk to the loopback fake provider
(`covey.testing.fakeserver`, a process of its own, so its CPU is not counted) which answers
every request with a short text and a tool call, streamed as SSE. The figure is this
process's CPU time (user + system, `time.process_time`) per request: the median over the
requests, and the mean. CPU time, unlike wall time, barely moves with the machine's load (the
other engineers' runs), so it is the figure to compare across runs; what the adapter adds to
the supervisor per turn is (anthropic − scripted).

`--clients`: which HTTP client the real adapters send through, each a row of its own: `h11`,
covey's own (`covey.models._http11`, what runs unless a proxy is set), and `httpx`, the
`httpx2` client that a proxy in the environment selects (`covey.models._proxied`), here
chosen by swapping `covey.models._pool.new_http` (no proxy is involved).

`--profile FILE` writes a cProfile (timed by CPU time, not the wall clock) of every request
of the last configuration run (use one provider and one history length), for `python -m
pstats FILE`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

import covey.models._pool as pool
from benchtools import start_fake_provider
from covey.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from covey.models._proxied import new_httpx
from covey.models.anthropic import AnthropicModel
from covey.models.base import Model, ModelRequest, ToolSpec
from covey.models.openai import OpenAIModel
from covey.models.scripted import ScriptedModel

LINE = "line {i}: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu\n"
FILE_TEXT = "".join(LINE.format(i=i) for i in range(26))  # ~2 KB, as a Read of a small file
SYSTEM = "You are a coding agent working in a git repository. " * 140  # ~7 KB
TOOLS = [
    ToolSpec(
        f"Tool{n}",
        "Does one thing to the workspace and reports what it did. " * 8,
        {
            "type": "object",
            "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["path"],
        },
    )
    for n in range(10)
]
ANSWER = {
    "text": "Reading the notes again.",
    "tool_calls": [{"name": "Read", "input": {"file_path": "notes.txt"}}],
}


def conversation(history: int) -> list[Message]:
    messages = [Message.user("Read notes.txt until you know it by heart.")]
    for turn in range(history):
        use = ToolUseBlock(id=f"toolu_{turn}", name="Read", input={"file_path": "notes.txt"})
        messages.append(
            Message(role="assistant", content=[TextBlock(text="Reading the notes again."), use])
        )
        messages.append(
            Message(role="user", content=[ToolResultBlock(tool_use_id=use.id, content=FILE_TEXT)])
        )
    return messages


def build(provider: str, url: str, script: Path) -> Model:
    if provider == "anthropic":
        return AnthropicModel("claude-bench", api_key="k", base_url=url)
    if provider == "openai":
        return OpenAIModel("gpt-bench", api_key="k", base_url=url + "/v1")
    return ScriptedModel.from_path(str(script))


async def measure(model: Model, request: ModelRequest, count: int, profile: Any) -> list[float]:
    await model.complete(request)  # the first request pays the imports and the connection
    cpu = []
    for _ in range(count):
        if profile is not None:
            profile.enable()
        start = time.process_time()
        await model.complete(request)
        cpu.append(time.process_time() - start)
        if profile is not None:
            profile.disable()
    return cpu


def runs(providers: list[str], clients: list[str]) -> list[tuple[str, str]]:
    """(provider, client) pairs: the scripted model sends nothing, so it runs once."""
    return [(p, c) for p in providers for c in (clients if p != "scripted" else clients[:1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--history", default="0,20,100,200", help="past turns, comma-separated")
    parser.add_argument("--providers", default="scripted,anthropic,openai")
    parser.add_argument("--clients", default="h11,httpx", help="h11 (covey's own), httpx")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the last run here")
    args = parser.parse_args()
    histories = [int(h) for h in args.history.split(",")]
    providers = args.providers.split(",")
    clients = args.clients.split(",")
    if not set(clients) <= {"h11", "httpx"}:
        parser.error(f"--clients: h11, httpx or both (got {args.clients!r})")
    own_client = pool.new_http
    with tempfile.TemporaryDirectory(prefix="covey-bench-adapter-") as name:
        tmp = Path(name)
        script = tmp / "script.yaml"
        script.write_text(yaml.safe_dump({"turns": [ANSWER] * (max(histories) + 1)}))
        server, url = start_fake_provider(script, tmp)
        try:
            rows = []
            for history in histories:
                request = ModelRequest(system=SYSTEM, messages=conversation(history), tools=TOOLS)
                for provider, client in runs(providers, clients):
                    pool.new_http = new_httpx if client == "httpx" else own_client
                    profile = cProfile.Profile(time.process_time) if args.profile else None
                    model = build(provider, url, script)
                    cpu = asyncio.run(measure(model, request, args.requests, profile))
                    label = provider if provider == "scripted" else f"{provider}, {client}"
                    rows.append((history, label, statistics.median(cpu), statistics.mean(cpu)))
                    if profile is not None:
                        profile.dump_stats(args.profile)
        finally:
            server.terminate()
            server.wait()
    load = ", ".join(f"{x:.1f}" for x in __import__("os").getloadavg())
    print(f"{args.requests} requests per row; load average {load}; Python {sys.version.split()[0]}")
    print()
    print("| past turns | model | CPU per request, median | mean |")
    print("|---|---|---|---|")
    for history, provider, median, mean in rows:
        print(f"| {history} | {provider} | {median * 1000:.2f} ms | {mean * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
