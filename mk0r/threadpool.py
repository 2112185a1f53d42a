"""Synchronous views on a thread pool of their own under ASGI.

Under ASGI, Django runs a synchronous view on the request's thread-sensitive thread, a new one per
request: each request would open its own database connection (and prepare its statements again),
and a persistent connection would be left behind when the thread ends. Wrapped here, a view runs
on one of SYNC_VIEW_THREADS long-lived threads instead, as on the threaded WSGI server before,
while chat turns stream on the event loop.

Each thread keeps its own database connection; Django's request signals, which close stale and
failed connections under WSGI, run on another thread under ASGI, so the same check is made here,
on the thread that owns the connection, before and after every view (docs/ARCHITECTURE.md).
"""

import functools
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=settings.SYNC_VIEW_THREADS, thread_name_prefix="view")
    return _pool


def _run(fn, *args, **kwargs):
    close_old_connections()
    try:
        response = fn(*args, **kwargs)
        # DRF's Response renders lazily; render it here rather than on the handler's thread.
        if hasattr(response, "render") and callable(response.render):
            response.render()
        return response
    finally:
        close_old_connections()


def in_thread_pool(view):
    """`view` (a synchronous view) as an asynchronous one that runs it on the view thread pool.

    Under WSGI (the test client, `manage.py runserver`) it runs on the request's own thread, as
    it would unwrapped (thread_sensitive sync_to_async goes back to the thread that called the
    event loop). Attributes DRF and the schema read (`cls`, `csrf_exempt`) are kept."""

    async def threaded(request, *args, **kwargs):
        if isinstance(request, ASGIRequest):
            run = sync_to_async(_run, thread_sensitive=False, executor=_executor())
            return await run(view, request, *args, **kwargs)
        return await sync_to_async(view, thread_sensitive=True)(request, *args, **kwargs)

    functools.update_wrapper(threaded, view)
    return threaded


async def run_in_thread_pool(fn, /, **kwargs):
    """`fn(**kwargs)` (synchronous, e.g. a database write) on the view thread pool, for code on
    the event loop that must not block it."""
    return await sync_to_async(_run, thread_sensitive=False, executor=_executor())(fn, **kwargs)
