"""Config for Tortoise's own CLI, e.g. after changing `models.py`:

    AUTH_DB_URL=sqlite:///tmp/scratch.sqlite3 \
        python -m tortoise -c auth_service.tortoise_cli.TORTOISE_ORM makemigrations

The server never imports this module (it would read AUTH_DB_URL unvalidated at import);
it applies the migrations itself at start-up (`shared.database.open_database`).
"""

from __future__ import annotations

import os

from auth_service.db import APP_LABEL
from shared.database import tortoise_config
from shared.settings import AuthSettings

TORTOISE_ORM = tortoise_config(
    os.environ.get("AUTH_DB_URL", AuthSettings.model_fields["auth_db_url"].default), APP_LABEL
)
