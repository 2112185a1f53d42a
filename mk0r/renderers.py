from rest_framework.renderers import BaseRenderer, JSONRenderer


class EventStreamRenderer(BaseRenderer):
    """Lets a client that accepts only `text/event-stream` call a streaming view.

    The stream itself is a StreamingHttpResponse; what DRF renders here is an answer given
    before any stream started (an error), sent as one `error` event with the same body.
    """

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b"event: error\ndata: " + JSONRenderer().render(data) + b"\n\n"
