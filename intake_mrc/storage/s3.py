"""S3 objects read by ranged GetObject calls through s3fs's own aiobotocore client.

Every call after the first is pinned to the version seen at open: ``VersionId`` when the
bucket is versioned (the answer names one), else ``IfMatch`` with the ETag. The body is read
in bounded pieces and dropped as soon as the range asked is in. botocore's and s3fs's own
retries are off (see ``urls._s3_options``): this store's retries are the only ones.
"""

from __future__ import annotations

from typing import Any

from ..errors import CredentialsError
from .identity import Identity
from .ranged import Answer, RangedStore, Transient, parse_content_range
from .urls import _describe

_CREDENTIAL_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
}
_HINT = (
    "give credentials (storage_options key= and secret=, the AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY variables or a profile=), or pass storage_options={'anon': True} "
    "for a public bucket"
)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _no_hidden_retries(client: Any) -> None:
    """aiohttp's silent retry off in the sessions aiobotocore made for this client (made at
    the first request, which runs on a new connection and is never retried that way)."""
    from .http import no_hidden_retry

    http_session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    for session in list((getattr(http_session, "_sessions", None) or {}).values()):
        no_hidden_retry(session)


class S3Store(RangedStore):
    """An S3 object (see ``RangedStore`` for the checks)."""

    def _loop(self) -> Any:
        return self.fs.loop

    def _endpoint(self) -> str:
        endpoint = getattr(self.fs, "endpoint_url", None) or (self.fs.client_kwargs or {}).get(
            "endpoint_url"
        )
        if not endpoint and self.fs._s3 is not None:
            endpoint = self.fs._s3.meta.endpoint_url
        return f"s3:{endpoint or 'aws'}"

    def _credentials_hint(self) -> str:
        return _HINT

    async def _open(self, start: int, end: int | None) -> Answer:
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        bucket, key, version_id = self.fs.split_path(self.path)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, **self.fs.req_kw}
        if end is not None:
            kwargs["Range"] = f"bytes={start}-{end - 1}"
        if self.identity is not None and self.identity.version_id:
            kwargs["VersionId"] = self.identity.version_id
        elif version_id:
            kwargs["VersionId"] = version_id
        if self.identity is not None and self.identity.etag:
            kwargs["IfMatch"] = self.identity.etag
        try:
            await self.fs.set_session()
            client = await self.fs.get_s3(bucket)
            _no_hidden_retries(client)
            response = await client.get_object(**kwargs)
        except (NoCredentialsError, PartialCredentialsError) as error:
            raise CredentialsError(f"{_describe(error)}: {_HINT}", self.name) from None
        except ClientError as error:
            meta = error.response.get("ResponseMetadata", {})
            status = int(meta.get("HTTPStatusCode") or 0)
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _CREDENTIAL_CODES and status in (0, 400, 401, 403):
                status = 403
            if code in ("NoSuchKey", "NoSuchBucket", "NoSuchVersion") and not status:
                status = 404
            retry_after = (meta.get("HTTPHeaders") or {}).get("retry-after")
            return Answer(status=status or 500, retry_after=retry_after, error=code)
        except Exception as error:  # noqa: BLE001 - transport failures of the client
            raise Transient(_describe(error)) from None
        body = response["Body"]
        content_range = response.get("ContentRange")
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 200)
        parsed = parse_content_range(content_range)
        size = parsed[2] if parsed else response.get("ContentLength")
        identity = Identity(
            size=size,
            etag=response.get("ETag"),
            last_modified=_text(response.get("LastModified")),
            version_id=response.get("VersionId"),
        )
        raw = getattr(body, "_raw_stream", None) or getattr(body, "__wrapped__", None)

        async def read(n: int) -> bytes:
            try:
                return await body.read(n)
            except Exception as error:  # noqa: BLE001 - a cut or failed transfer
                raise Transient(_describe(error)) from None

        def at_eof() -> bool:
            content = getattr(raw, "content", None)
            return bool(content is not None and content.at_eof())

        def release() -> None:
            release_raw = getattr(raw, "release", None)
            if release_raw is not None:
                release_raw()
            else:
                body.close()

        return Answer(
            status=status,
            content_range=content_range,
            content_length=response.get("ContentLength"),
            identity=identity,
            read=read,
            at_eof=at_eof,
            close=body.close,
            release=release,
        )
