"""The back office's admin site: its name on every page, and the dashboard as its home page."""

from django.contrib import admin

from cashback.dashboard import dashboard_context

BRAND = "Cashback back office"


class BackOfficeSite(admin.AdminSite):
    """`admin.site` (`cashback.apps.BackOfficeAdminConfig`). Staff with `view_dashboard` find
    the dashboard at `/admin/`, with the usual list of models under it; others, the list."""

    site_header = BRAND
    site_title = BRAND
    index_title = BRAND
    dashboard_template = "admin/cashback/dashboard.html"

    def index(self, request, extra_context=None):
        response = super().index(request, extra_context)
        if request.user.has_perm("cashback.view_dashboard"):
            response.template_name = self.dashboard_template
            response.context_data = {**(response.context_data or {}), **dashboard_context()}
        return response
