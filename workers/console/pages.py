"""The console's pages: a registry, one permission per page, and a renderer that pages refresh through.

A page is a view registered with :func:`console_page`. It gets a URL under ``/admin/jobs/``, a
tab in the console's navigation (shown only to staff holding its permission), and a
``PermissionDenied`` for everyone else. Its template extends ``admin/workers/console/base.html``
and puts what changes in the ``live`` block: ``console.js`` fetches the page again every few
seconds and swaps that block in place, without a full reload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    permission: str
    view: Callable

    @property
    def url_name(self) -> str:
        return f"jobs-{self.slug}"

    @property
    def url(self) -> str:
        return reverse(self.url_name)


PAGES: list[Page] = []


def console_page(slug: str, title: str, *, permission: str) -> Callable:
    """Register a view as a console page at ``/admin/jobs/<slug>/``, behind ``permission``."""

    def register(view: Callable) -> Callable:
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.user.has_perm(permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        PAGES.append(Page(slug, title, permission, guarded))
        return guarded

    return register


def render(request, template: str, context: dict, *, title: str) -> TemplateResponse:
    """A console page: the admin's context, the tabs this user may open, and the refresh interval."""
    context = {
        **admin.site.each_context(request),
        "title": title,
        "console_pages": [page for page in PAGES if request.user.has_perm(page.permission)],
        "current_path": request.path,
        "refresh_ms": settings.CONSOLE_REFRESH_MS,
        "refresh_seconds": settings.CONSOLE_REFRESH_MS / 1000,
        **context,
    }
    return TemplateResponse(request, template, context)


def urlpatterns() -> list:
    from workers.console import registered  # noqa: F401 - importing the page modules registers them

    return [path(f"jobs/{page.slug}/", admin.site.admin_view(page.view), name=page.url_name) for page in PAGES]
