"""Which account at its provider a job lives under, and the credentials that reach it.

A job is created with its tenant's own credentials at its provider when the tenant has set some
(`service.providers.credentials_store`), else with the operator's; it remembers which
(`JobRow.credentials_id`), because its provider job, its file copies and its fine-tuned model
exist under that account only. Every later call for it (submit, refresh, cancel, pause, resume)
uses the same credentials. If the tenant deletes them, the job cannot be reached any more: it
fails with `provider_credentials_deleted` at its next submit or refresh (a cancel is a 409 with
that code), and is never polled with the operator's key, which belongs to another account.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.errors import Conflict
from service.jobs.models import JobRow
from service.jobs.transitions import fail
from service.providers.credentials import CredentialsCipher, ProviderCredentials
from service.providers.credentials_store import credentials_by_id, find_credentials

CREDENTIALS_DELETED = "provider_credentials_deleted"


class CredentialsDeleted(Exception):
    """The tenant's credentials a job was created with were deleted since."""


def credentials_for_new_job(session: Session, *, tenant_id: str, provider: str) -> str | None:
    """The id of the credentials a job created now is bound to (None: the operator's)."""
    row = find_credentials(session, tenant_id=tenant_id, provider=provider)
    return row.id if row is not None else None


def job_credentials(session: Session, job: JobRow, cipher: CredentialsCipher) -> ProviderCredentials | None:
    """The credentials to call the provider with for `job` (None: the operator's);
    CredentialsDeleted when the tenant's were deleted."""
    if job.credentials_id is None:
        return None
    credentials = credentials_by_id(session, cipher, job.credentials_id)
    if credentials is None:
        raise CredentialsDeleted(job.credentials_id)
    return credentials


def _message(job: JobRow) -> str:
    return (
        f"The tenant's credentials for provider '{job.provider}' that this job was created with "
        f"({job.credentials_id}) were deleted, so its provider job can no longer be reached; it is "
        "not followed with other credentials. Set the credentials again (the same account) and "
        "retry the job."
    )


def fail_unreachable(session: Session, job: JobRow) -> None:
    """Fail `job` (in the caller's transaction): its credentials are gone."""
    fail(session, job, code=CREDENTIALS_DELETED, message=_message(job), param=None)


def unreachable(job: JobRow) -> Conflict:
    """What an action on a job whose credentials are gone answers."""
    return Conflict(_message(job), param="fine_tuning_job_id", code=CREDENTIALS_DELETED)
