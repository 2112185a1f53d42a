"""gunicorn settings of the production server: `make serve` and the Docker image run
`gunicorn --config docker/gunicorn.conf.py mk0r.asgi:application`.

Uvicorn workers run Django's ASGI application: a chat turn streams on a worker's event loop and
holds no thread while the agent works, so a node carries a thousand open turns; the other API
views run on each worker's view threads (mk0r.threadpool, SYNC_VIEW_THREADS).
See docs/ARCHITECTURE.md, "How a chat turn is served".
"""

import os
import resource

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
worker_class = "uvicorn_worker.UvicornWorker"
# One worker per CPU: each is one event loop plus its view threads.
workers = int(os.environ.get("WEB_CONCURRENCY", str(os.cpu_count() or 2)))
# A worker that stops answering its heartbeat for this long is replaced; the event loop beats
# while turns stream, so long chat turns are not cut off.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# The heartbeat touches a file now and then: keep it in memory, not on disk (gunicorn creates
# its own private file in this directory).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# On a restart, open turns get this long to finish; the rest are cut, and their bridges cancel
# them (the client is gone).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# No recycling after N requests: a recycled worker would cut every turn it streams.
max_requests = 0
# The TLS proxy in front sets X-Forwarded-Proto; trust it from anywhere on the private network.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
accesslog = "-"
errorlog = "-"

# Every open turn is two sockets (the client's and the bridge's): raise the soft limit on open
# files to the hard one (commonly 1,024 soft), for the workers to inherit.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft != _hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))


# The cyclic garbage collector's middle generation is collected after 50 collections of the
# youngest instead of 10. Each of those collections moves what is alive at that moment (a
# relayed event or a quote in flight) into the oldest generation, and once that has grown by a
# quarter the collector walks everything a worker holds: with 500 open turns, 50 to 100 ms in
# which the worker answers nothing. Fewer middle collections promote fewer of those short-lived
# objects: in a row of 1,000 turns of 60 s, 2 full collections instead of 9, and the switch p99
# 21 to 24 ms instead of 97 ms, with the same memory (bench/streams.py; docs/PERFORMANCE.md,
# "Open chat turns, side by side"). The youngest generation keeps Python's threshold.
MIDDLE_GENERATION_THRESHOLD = 50


def post_worker_init(worker):
    import gc

    young, _, old = gc.get_threshold()
    gc.set_threshold(young, MIDDLE_GENERATION_THRESHOLD, old)
