from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """A model the back office only reads: wallets, entries and webhook deliveries move through
    the services (an adjustment, an approval, a resend), never through the admin's forms."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
