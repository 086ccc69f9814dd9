"""The auth service's Tortoise config, for the server and for Tortoise's own CLI.

`TORTOISE_ORM` is what `python -m tortoise -c auth_service.db.TORTOISE_ORM makemigrations`
reads (it uses `AUTH_DB_URL`, or the default SQLite file, only to load the models).
"""

from __future__ import annotations

import os
from typing import Any

from shared.database import tortoise_config
from shared.settings import AuthSettings

APP_LABEL = "auth_service"


def database_config(settings: AuthSettings) -> dict[str, Any]:
    """Tortoise config for the users and refresh tokens of this service."""
    return tortoise_config(settings.auth_db_url, APP_LABEL, settings.db_pool_size)


def _cli_config() -> dict[str, Any]:
    default_url = AuthSettings.model_fields["auth_db_url"].default
    return tortoise_config(os.environ.get("AUTH_DB_URL", default_url), APP_LABEL)


TORTOISE_ORM = _cli_config()
