"""Every table, imported in one place so that Alembic and the tests see the whole schema."""

from __future__ import annotations

from service.auth.models import ApiKeyRow, TenantRow
from service.db import Base
from service.deployments.models import DeploymentRow, DeploymentVersionRow, PromotionDecisionRow
from service.evals.models import EvalRow, EvalRunItemRow, EvalRunRow, JobEvaluationRow
from service.files.models import FileRow, PreparationRow, ProviderFileRow
from service.idempotency.models import IdempotencyKeyRow
from service.jobs.models import JobCheckpointRow, JobEventRow, JobRow, ProviderWebhookRow
from service.limits.models import LimitRow
from service.models.models import FineTunedModelRow
from service.outbox.models import OutboxRow
from service.providers.credentials_store import TenantCredentialsRow
from service.uploads.models import UploadPartRow, UploadRow
from service.usage.models import UsageRow
from service.webhooks.models import WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow, WebhookEventRow

metadata = Base.metadata

__all__ = [
    "ApiKeyRow",
    "DeploymentRow",
    "DeploymentVersionRow",
    "EvalRow",
    "EvalRunItemRow",
    "EvalRunRow",
    "FileRow",
    "FineTunedModelRow",
    "IdempotencyKeyRow",
    "JobCheckpointRow",
    "JobEvaluationRow",
    "JobEventRow",
    "JobRow",
    "LimitRow",
    "OutboxRow",
    "PreparationRow",
    "ProviderFileRow",
    "PromotionDecisionRow",
    "ProviderWebhookRow",
    "TenantCredentialsRow",
    "TenantRow",
    "UploadPartRow",
    "UploadRow",
    "UsageRow",
    "WebhookAttemptRow",
    "WebhookDeliveryRow",
    "WebhookEndpointRow",
    "WebhookEventRow",
    "metadata",
]
