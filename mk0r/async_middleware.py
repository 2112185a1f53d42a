"""The base of this project's own middleware: runs in either of Django's modes."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class AsyncCapableMiddleware:
    """A middleware Django can run in either mode. Under ASGI, a synchronous-only middleware
    would put every request (chat turns included) through one thread per process.

    Subclasses say what to do before the view (`before`: a response ends the request there) and
    after it (`after`), neither of which may block."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        response = self.before(request)
        if response is None:
            response = self.get_response(request)
        return self.after(request, response)

    async def _acall(self, request):
        response = self.before(request)
        if response is None:
            response = await self.get_response(request)
        return self.after(request, response)

    def before(self, request):
        return None

    def after(self, request, response):
        return response
