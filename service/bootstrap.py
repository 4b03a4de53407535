"""Make sure the bootstrap API key (`FTM_BOOTSTRAP_API_KEY`) exists as a platform admin key of `default`.

It holds every scope, `platform` included, so the operator who deploys the service administers it.
The dev stack's key (`make run`) goes through here too.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.auth.keys import ALL_SCOPES
from service.auth.service import DEFAULT_TENANT, ensure_key
from service.config import Settings
from service.db import session_scope

log = logging.getLogger(__name__)


def ensure_bootstrap_key(settings: Settings, sessions: sessionmaker[Session]) -> None:
    if settings.bootstrap_api_key is None:
        return
    key = settings.bootstrap_api_key.get_secret_value()
    for attempt in (1, 2):  # two replicas starting at once may race to create the tenant
        try:
            with session_scope(sessions) as session:
                row = ensure_key(session, key, tenant_name=DEFAULT_TENANT, scopes=ALL_SCOPES)
            log.info(
                "bootstrap API key %s… is a platform admin key of tenant '%s'", row.prefix, DEFAULT_TENANT
            )
            return
        except IntegrityError:
            if attempt == 2:
                raise
