#!/bin/sh
# Runs before every process of the image (web, worker, beat, migrate).
#
# DJANGO_SECRET_KEY can come from the environment or from a file (DJANGO_SECRET_KEY_FILE,
# e.g. a Docker secret). When neither is given and the file's folder is writable, a random
# key is made once and kept there (docker/compose.yaml keeps it on a named volume), so a
# local stack starts with no set-up and never with a key that is written down anywhere.
set -eu

if [ -z "${DJANGO_SECRET_KEY:-}" ] && [ -n "${DJANGO_SECRET_KEY_FILE:-}" ]; then
    if [ ! -s "$DJANGO_SECRET_KEY_FILE" ]; then
        umask 077
        python -c 'import secrets; print(secrets.token_urlsafe(64))' > "$DJANGO_SECRET_KEY_FILE.tmp"
        # mv -n: of two processes starting at once, the first key wins and both use it.
        mv -n "$DJANGO_SECRET_KEY_FILE.tmp" "$DJANGO_SECRET_KEY_FILE" || true
        rm -f "$DJANGO_SECRET_KEY_FILE.tmp"
    fi
    DJANGO_SECRET_KEY="$(cat "$DJANGO_SECRET_KEY_FILE")"
    export DJANGO_SECRET_KEY
fi

exec "$@"
