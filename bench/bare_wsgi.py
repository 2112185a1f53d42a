"""The smallest WSGI app, served by the threaded gunicorn settings (bench/gthread.conf.py): the
floor a request pays there on this machine before Django sees it."""

BODY = b'{"ok":true}'


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
