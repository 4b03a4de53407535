"""The blob store a process uses, chosen by FTM_BLOB_STORE (`dir` or `s3`)."""

from __future__ import annotations

from service.blobs.directory import DirectoryBlobStore
from service.blobs.store import BlobStore
from service.config import Settings

MIB = 1024 * 1024


def create_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "dir":
        return DirectoryBlobStore(settings.blob_dir)
    return _create_s3_store(settings)


def _create_s3_store(settings: Settings) -> BlobStore:
    # boto3 loads only where the S3 store is chosen.
    import boto3
    from botocore.config import Config

    from service.blobs.s3 import S3BlobStore

    secret = settings.s3_secret_access_key
    config = Config(
        connect_timeout=10,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 5},
        # Other S3-compatible services do not all take the newer default checksum headers.
        request_checksum_calculation="when_supported"
        if settings.s3_endpoint_url is None
        else "when_required",
        response_checksum_validation="when_supported"
        if settings.s3_endpoint_url is None
        else "when_required",
    )
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret is not None else None,
        config=config,
    )
    return S3BlobStore(
        client, settings.s3_bucket, prefix=settings.s3_prefix, part_size=settings.s3_part_size_mib * MIB
    )
