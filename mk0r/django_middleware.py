"""Django's own middleware, run on the event loop under ASGI.

Django's middleware classes (`MiddlewareMixin`) are async-capable, but in async mode each hook
(`process_request`, `process_view`, `process_response`) runs through
`sync_to_async(thread_sensitive=True)`: on a thread asgiref makes for the request and keeps until
its response is closed. For a chat turn that is a thread held for the whole turn, and for every
request a dozen hand-overs between the loop and that thread.

The hooks below only read the request and set headers, cookies or redirects: no database, no
network. They run on the loop. Two can write to the database: the session's save (when the session
was changed) and the messages' store (when messages were added or read, which reads the session);
those cases, rare outside the admin, run on the view thread pool. Under WSGI the classes behave as
Django's. docs/ARCHITECTURE.md, "Middleware: no thread per request", says why each is safe.
"""

from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import ImproperlyConfigured
from django.middleware import clickjacking, common, csrf, security

from .threadpool import run_in_thread_pool


class _OnTheLoop:
    """Over a Django `MiddlewareMixin` class: in async mode, its hooks run on the event loop."""

    def __init__(self, get_response):
        super().__init__(get_response)
        if self.async_mode and hasattr(self, "process_view"):
            # Django adapts process_view by what it is: a coroutine function is awaited on the loop.
            self.process_view = self._process_view_on_the_loop

    async def __acall__(self, request):
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.writes_on_response(request):
                return await run_in_thread_pool(self.process_response, request=request, response=response)
            response = self.process_response(request, response)
        return response

    async def _process_view_on_the_loop(self, request, callback, callback_args, callback_kwargs):
        return type(self).process_view(self, request, callback, callback_args, callback_kwargs)

    def writes_on_response(self, request) -> bool:
        """Whether process_response will touch the database for this request."""
        return False


class SecurityMiddleware(_OnTheLoop, security.SecurityMiddleware):
    pass


class CommonMiddleware(_OnTheLoop, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(_OnTheLoop, csrf.CsrfViewMiddleware):
    """The token lives in a cookie (CSRF_USE_SESSIONS off): checking it reads no session."""

    def __init__(self, get_response):
        if settings.CSRF_USE_SESSIONS:
            raise ImproperlyConfigured("mk0r.django_middleware.CsrfViewMiddleware needs CSRF_USE_SESSIONS off.")
        super().__init__(get_response)


class SessionMiddleware(_OnTheLoop, sessions.SessionMiddleware):
    """The session is loaded lazily, where it is first used (a view thread); saved on one."""

    def writes_on_response(self, request) -> bool:
        session = getattr(request, "session", None)
        if session is None or session.is_empty():
            return False
        return session.modified or settings.SESSION_SAVE_EVERY_REQUEST


class AuthenticationMiddleware(_OnTheLoop, auth.AuthenticationMiddleware):
    """Sets the lazy `request.user`; the user is read where it is first used (a view thread)."""


class MessageMiddleware(_OnTheLoop, messages.MessageMiddleware):
    def writes_on_response(self, request) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(_OnTheLoop, clickjacking.XFrameOptionsMiddleware):
    pass


# Each class here by its dotted path, and the path of the Django class it stands in for.
DJANGO_PATHS = {
    f"{__name__}.{cls.__name__}": f"{cls.__mro__[2].__module__}.{cls.__mro__[2].__name__}"
    for cls in (
        SecurityMiddleware,
        CommonMiddleware,
        CsrfViewMiddleware,
        SessionMiddleware,
        AuthenticationMiddleware,
        MessageMiddleware,
        XFrameOptionsMiddleware,
    )
}
