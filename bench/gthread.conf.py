"""The threaded WSGI deployment the service ran on before docker/gunicorn.conf.py: 2 gthread
workers x 16 threads serving mk0r.wsgi:application, a chat turn holding one thread for as long as
the agent streams. Kept for side-by-side figures (bench/streams.py) and for clocking the stages
of a request (bench/timed_gunicorn.conf.py hooks the threaded worker)."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# A worker that stops answering its heartbeat for this long is replaced; gthread workers
# keep beating while their threads stream, so long chat turns are not cut off.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# The heartbeat touches a file on every turn of a worker's loop: keep it in memory, not on disk
# (gunicorn creates its own private file in this directory).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (with jitter, so not all at once); rarely, since a new worker
# opens new database connections and prepares its statements again.
max_requests = 20000
max_requests_jitter = 2000
# The TLS proxy in front sets X-Forwarded-Proto; trust it from anywhere on the private network.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
