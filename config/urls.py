"""URL routes: the admin (with the jobs dashboard) and nothing else."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from workers import dashboard

admin.site.site_header = "Back office"
admin.site.site_title = "Back office"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", include(dashboard.urls())),
    path("admin/", admin.site.urls),
]
