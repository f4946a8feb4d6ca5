"""URL routes: the admin (with the jobs console), and the favicon browsers ask every page for."""

from django.contrib import admin
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.generic import RedirectView, TemplateView

from workers.console import pages as console_pages

admin.site.site_header = "Back office"
admin.site.site_title = "Back office"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Browsers ask for /favicon.ico on every page; an SVG answers instead of a 404 in the log.
    path(
        "favicon.ico",
        cache_control(max_age=86_400, public=True)(
            TemplateView.as_view(template_name="favicon.svg", content_type="image/svg+xml")
        ),
    ),
    path("admin/", include(console_pages.urlpatterns())),
    path("admin/", admin.site.urls),
]
