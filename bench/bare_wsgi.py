"""The smallest WSGI app, served by the same gunicorn settings as the service: the floor a
request pays on this machine before Django sees it."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"ok":true}']
