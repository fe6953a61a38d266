from covey.messages import (
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    dump_message,
    load_message,
)


def test_message_round_trips_through_the_serializer() -> None:
    m = Message(
        role="assistant",
        content=[
            TextBlock(text="hi"),
            ToolUseBlock(id="toolu_1", name="Read", input={"file_path": "a.py"}),
        ],
    )
    again = load_message(dump_message(m))
    assert again == m
    assert again.text == "hi"
    assert [t.name for t in again.tool_uses] == ["Read"]


def test_tool_results_are_found_and_usage_adds_up() -> None:
    m = Message(role="user", content=[ToolResultBlock(tool_use_id="t", content="x", is_error=True)])
    assert m.tool_results[0].is_error
    total = Usage(input=1, output=2) + Usage(cache_read=3, cache_write=4)
    assert total.total_input == 8 and total.output == 2
