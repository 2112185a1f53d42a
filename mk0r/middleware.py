from django.conf import settings

from .errors import json_error


class BodySizeLimitMiddleware:
    """413 for bodies over DATA_UPLOAD_MAX_MEMORY_SIZE before anything reads them.

    DRF's parsers read the request stream directly, which skips Django's own
    check on request.body, so the limit is enforced here for every view.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error(400, "invalid_request", "Content-Length is not a number.")
        if limit is not None and length > limit:
            return json_error(413, "payload_too_large", f"The request body is over {limit} bytes.")
        return self.get_response(request)
