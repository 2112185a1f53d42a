"""Django's deploy checks that look for its middleware by dotted path.

mk0r.django_middleware's classes stand in for Django's own (they run on the event loop), so
Django's checks for HSTS, the HTTPS redirect, the CSRF cookie and X-Frame-Options would find no
middleware and pass without looking. They run again here on the middleware list as Django would
read it. Its three "middleware missing" warnings are silenced in the settings;
tests/mk0r/test_asgi.py checks that the stand-ins are installed.
"""

from django.conf import settings
from django.core import checks

from .django_middleware import DJANGO_PATHS


@checks.register(checks.Tags.security, deploy=True)
def django_middleware_settings(app_configs, **kwargs):
    from django.core.checks.security import base, csrf
    from django.test.utils import override_settings

    guarded = (
        base.check_sts,
        base.check_sts_include_subdomains,
        base.check_sts_preload,
        base.check_content_type_nosniff,
        base.check_ssl_redirect,
        base.check_xframe_deny,
        base.check_referrer_policy,
        base.check_cross_origin_opener_policy,
        csrf.check_csrf_cookie_secure,
    )
    with override_settings(MIDDLEWARE=[DJANGO_PATHS.get(path, path) for path in settings.MIDDLEWARE]):
        return [message for check in guarded for message in check(app_configs)]
