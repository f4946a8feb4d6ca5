"""Staff users for admin tests: logged in with exactly the permissions a test names."""

from __future__ import annotations

from django.contrib.auth.models import Permission, User


def login_staff(client, *codenames: str, username: str = "clerk") -> User:
    """A staff user holding the permissions ``codenames`` (and no others), logged in on ``client``."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user
