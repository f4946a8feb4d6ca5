"""Admin for reports: the list, a detail page with the figures and a chart, and a regenerate action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.urls import path

from reports.charts import daily_charts
from reports.formats import product_rows, summary_rows
from reports.models import Report
from reports.selectors import report_daily_series
from reports.services.daily import report_daily_queue_regeneration
from reports.services.mail import report_csv_bytes, report_csv_filename, report_email_html

#: How many days up to a report its chart shows.
CHART_DAYS = 30


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["date", "type", "orders", "revenue", "average_order_value", "generated_at"]
    list_filter = ["type"]
    date_hierarchy = "date"
    fields = ["type", "date", "generated_at"]
    readonly_fields = fields
    actions = ["regenerate"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Orders")
    def orders(self, report: Report) -> int:
        return report.data.get("orders", 0)

    @admin.display(description="Revenue")
    def revenue(self, report: Report) -> str:
        return report.data.get("revenue", "")

    @admin.display(description="Average order value")
    def average_order_value(self, report: Report) -> str:
        return report.data.get("average_order_value", "")

    def get_urls(self):
        return [
            path("<path:object_id>/csv/", self.admin_site.admin_view(self.csv_view), name="reports_report_csv"),
            path("<path:object_id>/mail/", self.admin_site.admin_view(self.mail_view), name="reports_report_mail"),
            *super().get_urls(),
        ]

    def csv_view(self, request, object_id) -> HttpResponse:
        """The report's figures as the CSV file its mail attaches."""
        report = self._viewable(request, object_id)
        response = HttpResponse(report_csv_bytes(report), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{report_csv_filename(report)}"'
        return response

    def mail_view(self, request, object_id) -> HttpResponse:
        """The HTML body of the report's mail, as it is sent, with the figures as they are now."""
        report = self._viewable(request, object_id)
        response = HttpResponse(report_email_html(report))
        # The mail's own markup, from stored figures: let it show nothing it did not bring.
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return response

    def _viewable(self, request, object_id) -> Report:
        report = self.get_object(request, unquote(object_id))
        if report is None:
            raise Http404(f"No report with id {object_id!r}.")
        if not self.has_view_permission(request, report):
            raise PermissionDenied
        return report

    def change_view(self, request, object_id, form_url="", extra_context=None):
        report = self.get_object(request, unquote(object_id))
        if report is not None:
            series = report_daily_series(end=report.date, days=CHART_DAYS)
            extra_context = {
                **(extra_context or {}),
                "summary": summary_rows(report.data),
                "products": product_rows(report.data),
                "charts": daily_charts(series, last=report.date, days=CHART_DAYS),
                "can_regenerate": self.has_regenerate_permission(request),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Regenerate selected reports", permissions=["regenerate"])
    def regenerate(self, request, queryset) -> None:
        queued = report_daily_queue_regeneration(days=list(queryset.values_list("date", flat=True)))
        self.message_user(request, f"{queued} report(s) queued to be generated again.", messages.SUCCESS)

    def has_regenerate_permission(self, request) -> bool:
        return request.user.has_perm("reports.regenerate_report")
