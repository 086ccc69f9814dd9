"""The auth service's Tortoise config (models and migrations of the `auth_service` app)."""

from __future__ import annotations

from typing import Any

from shared.database import tortoise_config
from shared.settings import AuthSettings

APP_LABEL = "auth_service"


def database_config(settings: AuthSettings) -> dict[str, Any]:
    """Tortoise config for the users and refresh tokens of this service."""
    return tortoise_config(settings.auth_db_url, APP_LABEL, settings.db_pool_size)
