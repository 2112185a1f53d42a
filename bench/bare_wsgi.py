"""The smallest WSGI app, served by the same gunicorn settings as the service: the floor a
request pays on this machine before Django sees it."""

BODY = b'{"ok":true}'


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
