"""The S3 side of ``pipeline.storage``: its boto3 client (timeouts, retries, settings MinIO and Ceph need)
and the translation of boto errors into one-line ``StorageError``s. Imported only when an S3 URI is used,
so local runs never load boto3."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pipeline.storage import StorageError, StorageOptions, parse_uri

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_TRANSIENT = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError"}  # and 5xx


def is_not_found(exc: Any) -> bool:
    """A botocore ClientError saying the key (or, for HEAD, whatever was asked) does not exist."""
    return _code(exc) in _NOT_FOUND


def make_client(options: StorageOptions) -> Any:
    import boto3
    from botocore.config import Config

    extra: dict[str, Any] = {}
    if options.endpoint_url:
        # MinIO and Ceph RGW expect path-style addressing by default, and some of their releases reject
        # the CRC checksum headers botocore sends unasked since 1.36; AWS accepts both settings.
        extra = {
            "s3": {"addressing_style": "path"},
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
    config = Config(
        retries={"total_max_attempts": options.max_attempts, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        **extra,
    )
    # A private session: boto3's default session is not safe to create clients from concurrently.
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=options.endpoint_url, region_name=options.region, config=config)


def transfer_config(multipart_threshold: int) -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=multipart_threshold, multipart_chunksize=16 * 1024 * 1024)


@contextlib.contextmanager
def errors(uri: str, attempts: int) -> Iterator[None]:
    """boto errors inside the block leave it as one-line StorageErrors (``storage_error``)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError, Boto3Error) as exc:
        raise storage_error(uri, exc, attempts) from exc


def arrow_filesystem(options: StorageOptions) -> Any:
    """The same S3 endpoint and region as a pyarrow filesystem (what Ray Train writes checkpoints with)."""
    import pyarrow.fs

    kwargs: dict[str, Any] = {"region": options.region} if options.region else {}
    if options.endpoint_url:
        scheme, _, host = options.endpoint_url.partition("://")
        kwargs.update(endpoint_override=host, scheme=scheme)
    return pyarrow.fs.S3FileSystem(
        retry_strategy=pyarrow.fs.AwsStandardS3RetryStrategy(options.max_attempts), **kwargs
    )


def storage_error(uri: str, exc: Exception, attempts: int) -> StorageError:
    """Translate a botocore/boto3 exception into a one-line StorageError. Only error codes go into the
    message, never the service's text, which for signature errors echoes request details."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, Exception):
        exc = exc.__context__  # s3transfer wraps the real ClientError in its context
    if isinstance(exc, ClientError):
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        bucket = parse_uri(uri).bucket
        if code == "NoSuchBucket":
            return StorageError(
                f"{uri}: bucket '{bucket}' does not exist; check the bucket name and endpoint"
            )
        if code in _NOT_FOUND:
            return StorageError(f"{uri}: not found; check the key or prefix")
        if code in _DENIED:
            return StorageError(
                f"{uri}: access denied ({code}); check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID or "
                "the instance role) and the bucket policy"
            )
        if code in _TRANSIENT or status >= 500:
            return StorageError(
                f"{uri}: transient S3 error {code or status} persisted after {attempts} attempts; "
                "retry later",
                transient=True,
            )
        return StorageError(f"{uri}: S3 refused the request ({code or status})")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageError(
            f"{uri}: no usable AWS credentials; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or run with an instance role"
        )
    if isinstance(exc, ConnectionError | HTTPClientError):
        return StorageError(
            f"{uri}: transient connection error ({type(exc).__name__}) persisted after {attempts} attempts; "
            "check the endpoint and network, then retry",
            transient=True,
        )
    return StorageError(f"{uri}: S3 request failed ({type(exc).__name__})")


def _code(exc: Any) -> str:
    """A botocore ClientError's S3 code, e.g. 'NoSuchKey' (the HTTP status for bodiless HEAD replies)."""
    return str(exc.response.get("Error", {}).get("Code", ""))
