"""The bridge's prompt stream read as bytes: events however the stream is cut into reads, and
each event's frame as the client gets it."""

import json

from sessions_app.bridge_client import SseParser, StreamEvent

UPDATE = {"sessionId": "acp-1", "update": {"sessionUpdate": "agent_message_chunk"}, "turn": 2}
STREAM = (
    f"event: update\ndata: {json.dumps(UPDATE)}\n\n"
    ': a comment\nevent: update\ndata: {"text": "é"}\n\n'
    'event: done\ndata: {"stopReason": "end_turn", "turn": 2}\n\n'
).encode()


def _parse(chunks) -> list[StreamEvent]:
    parser = SseParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    last = parser.end()
    return events + ([last] if last is not None else [])


def test_events_do_not_depend_on_how_the_stream_is_cut():
    whole = _parse([STREAM])
    assert [(e.event, e.data) for e in whole] == [
        ("update", UPDATE),
        ("update", {"text": "é"}),
        ("done", {"stopReason": "end_turn", "turn": 2}),
    ]
    byte_by_byte = _parse([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert [(e.event, e.data, e.frame) for e in byte_by_byte] == [(e.event, e.data, e.frame) for e in whole]


def test_crlf_line_ends_read_as_lf_also_when_a_read_ends_between_cr_and_lf():
    crlf = STREAM.replace(b"\n", b"\r\n")
    cut = crlf.index(b"\r\n\r\n") + 1
    assert [(e.event, e.data) for e in _parse([crlf[:cut], crlf[cut:]])] == [
        (e.event, e.data) for e in _parse([STREAM])
    ]


def test_a_json_object_on_one_data_line_passes_on_as_the_bridge_framed_it():
    events = _parse([STREAM])
    assert [e.sse() for e in events] == [
        f"event: update\ndata: {json.dumps(UPDATE)}\n\n".encode(),
        'event: update\ndata: {"text": "é"}\n\n'.encode(),
        b'event: done\ndata: {"stopReason": "end_turn", "turn": 2}\n\n',
    ]


def test_other_data_is_encoded_again():
    stream = b'event: update\ndata: {"a":\ndata: 1}\n\ndata: not json\n\ndata: [1]\n\nevent: done\ndata: {"b": 2}'
    events = _parse([stream])
    assert [(e.event, e.data) for e in events] == [
        ("update", {"a": 1}),
        ("message", {"text": "not json"}),
        ("message", {"value": [1]}),
        ("done", {"b": 2}),  # the stream's end ends its last event
    ]
    assert [e.sse() for e in events] == [
        b'event: update\ndata: {"a":1}\n\n',
        b'event: message\ndata: {"text":"not json"}\n\n',
        b'event: message\ndata: {"value":[1]}\n\n',
        b'event: done\ndata: {"b": 2}\n\n',
    ]


def test_an_event_without_data_is_no_event():
    assert _parse([b"event: update\n\n: keep-alive\n\n"]) == []
