"""Mail in the admin: listed with its recipients and status for staff who may view it, never its words, never edited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mail.models import Mail
from tests.support.users import login_staff

pytestmark = pytest.mark.django_db


def make_mail() -> Mail:
    return Mail.objects.create(
        key="order-confirmed:7", to=["buyer@example.com"], subject="Confirmed", body="Your card ends 4242"
    )


def test_the_list_shows_each_mail_with_its_recipients_and_status(client):
    make_mail()
    login_staff(client, "view_mail")

    page = client.get(reverse("admin:mail_mail_changelist")).content.decode()

    assert "order-confirmed:7" in page and "buyer@example.com" in page and "Pending" in page


def test_a_mails_page_shows_what_it_is_for_but_not_what_it_says_and_cannot_be_changed(client):
    queued = make_mail()
    login_staff(client, "view_mail", "change_mail", "delete_mail")

    page = client.get(reverse("admin:mail_mail_change", args=[queued.pk])).content.decode()

    assert "order-confirmed:7" in page
    assert "4242" not in page
    assert 'name="_save"' not in page
    assert client.post(reverse("admin:mail_mail_delete", args=[queued.pk]), {"post": "yes"}).status_code == 403
    assert Mail.objects.filter(pk=queued.pk).exists()


def test_staff_without_the_permission_do_not_see_it(client):
    make_mail()
    login_staff(client)

    assert client.get(reverse("admin:mail_mail_changelist")).status_code == 403
