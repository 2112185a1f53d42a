from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware

from .async_middleware import AsyncCapableMiddleware
from .errors import json_error


class BodySizeLimitMiddleware(AsyncCapableMiddleware):
    """413 for bodies over DATA_UPLOAD_MAX_MEMORY_SIZE before anything reads them.

    DRF's parsers read the request stream directly, which skips Django's own
    check on request.body, so the limit is enforced here for every view.
    """

    def before(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error(400, "invalid_request", "Content-Length is not a number.")
        if limit is not None and length > limit:
            return json_error(413, "payload_too_large", f"The request body is over {limit} bytes.")
        return None


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, able to run under ASGI too (it is synchronous-only itself): finding a file is a
    dictionary lookup (a stat with autorefresh, in development), so it is done on the loop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        super().__init__(get_response)
        self._next = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)
            # WhiteNoise calls get_response itself for anything but a static file; asked here
            # only whether the path is one, it answers None for the others.
            self.get_response = lambda request: None

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request):
        response = super().__call__(request)
        if response is None:
            return await self._next(request)
        if response.streaming and not response.is_async:
            # Django would read a synchronous body on its one thread (and warn); a static file
            # is small and local, read in blocks on the loop.
            response.streaming_content = _on_the_loop(response.streaming_content)
        return response


async def _on_the_loop(chunks):
    for chunk in chunks:
        yield chunk
