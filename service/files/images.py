"""Image content parts of vision examples: shape, inline (data URL) size and type.

OpenAI's limits: JPEG, PNG or WEBP, at most 10 MB per image, at most 10 images per example and
50,000 examples with images per file. An inline image's size is computed from its base64 length
and its type from its first bytes, so the image is never decoded whole. Remote URLs are only
checked for their scheme (they are fetched by the provider, not by us).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

DETAILS = ("auto", "low", "high")
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp")


@dataclass(frozen=True)
class ImagePolicy:
    max_bytes: int = 10 * 1024 * 1024
    max_per_example: int = 10
    max_examples_with_images: int = 50_000


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _decoded_size(data: str) -> int:
    return len(data) * 3 // 4 - data[-2:].count("=")


def check_image_url(part: dict[str, Any], where: str, policy: ImagePolicy) -> list[tuple[str, str]]:
    """Problems of one `{"type": "image_url", "image_url": {"url": ..., "detail": ...}}` part."""
    image = part.get("image_url")
    if set(part) - {"type", "image_url"} or not isinstance(image, dict) or set(image) - {"url", "detail"}:
        return [
            (
                "invalid_content_part",
                f"{where} must be {{'type': 'image_url', 'image_url': {{'url', 'detail'}}}}.",
            )
        ]
    if "detail" in image and image["detail"] not in DETAILS:
        return [("invalid_content_part", f"{where}.image_url.detail must be one of {', '.join(DETAILS)}.")]
    url = image.get("url")
    if not isinstance(url, str) or not url:
        return [("invalid_content_part", f"{where}.image_url.url must be a non-empty string.")]
    if url.startswith(("https://", "http://")):
        return []
    if not url.startswith("data:"):
        return [("invalid_image_url", f"{where}.image_url.url must be an http(s) URL or a base64 data URL.")]
    header, _, data = url.partition(",")
    media_type = header[len("data:") :].split(";")[0].lower()
    if not header.endswith(";base64") or not data:
        return [
            ("invalid_image_url", f"{where}: a data URL must be base64 encoded (data:image/png;base64,...).")
        ]
    if media_type not in MEDIA_TYPES:
        return [
            ("unsupported_image_type", f"{where}: {media_type or 'no media type'} is not JPEG, PNG or WEBP.")
        ]
    try:
        head = base64.b64decode(data[:32], validate=True)
    except (binascii.Error, ValueError):
        return [("invalid_image_url", f"{where}: the data URL is not valid base64.")]
    problems: list[tuple[str, str]] = []
    actual = _sniff(head)
    if actual != media_type:
        problems.append(
            (
                "unsupported_image_type",
                f"{where}: declared {media_type} but the bytes are {actual or 'not an image'}.",
            )
        )
    size = _decoded_size(data)
    if size > policy.max_bytes:
        problems.append(
            (
                "image_too_large",
                f"{where}: the image is {size} bytes; at most {policy.max_bytes} are allowed.",
            )
        )
    return problems
