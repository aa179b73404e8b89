"""The platform registry: handle rules and profile URL patterns, read from the `platforms`
table (adding a platform is a row, not code)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.errors import Unprocessable
from services.inventory.models import Platform

MAX_URL_LENGTH = 2048
MAX_HANDLE_LENGTH = 300
HOST_PREFIXES = ("www.", "m.", "mobile.")


class UnknownPlatform(Unprocessable):
    type_slug = "unknown-platform"
    title = "Unknown platform"


class InvalidHandle(Unprocessable):
    type_slug = "invalid-handle"
    title = "The handle breaks the platform's rules"


class PlatformMismatch(Unprocessable):
    type_slug = "platform-mismatch"
    title = "The URL is on another platform"


class InvalidProfileUrl(Unprocessable):
    type_slug = "invalid-profile-url"
    title = "Not a profile URL Chorus recognises"


@dataclass(frozen=True)
class PlatformRules:
    key: str
    name: str
    handle_re: re.Pattern[str]
    case_sensitive: bool
    profile_url_template: str
    url_res: tuple[re.Pattern[str], ...]
    handle_from_url: str
    url_priority: int
    dormant_after_days: int

    @classmethod
    def from_row(cls, row: Platform) -> PlatformRules:
        return cls(
            key=row.key,
            name=row.name,
            handle_re=re.compile(row.handle_pattern),
            case_sensitive=row.case_sensitive,
            profile_url_template=row.profile_url_template,
            url_res=tuple(re.compile(p) for p in row.url_patterns),
            handle_from_url=row.handle_from_url,
            url_priority=row.url_priority,
            dormant_after_days=row.dormant_after_days,
        )

    def normalise(self, handle: str) -> tuple[str, str]:
        """(the handle as it is shown, the key that makes it unique on the platform)."""
        shown = handle.strip().removeprefix("@")
        if len(shown) > MAX_HANDLE_LENGTH or not self.handle_re.fullmatch(shown):
            raise InvalidHandle(
                f"{handle!r} is not a valid {self.name} handle.",
                platform=self.key,
                pattern=self.handle_re.pattern,
            )
        return shown, shown if self.case_sensitive else shown.lower()

    def profile_url(self, handle: str) -> str:
        match = self.handle_re.fullmatch(handle)
        assert match is not None, "normalise() first"
        return self.profile_url_template.format(handle=handle, **match.groupdict())


@dataclass(frozen=True)
class Registry:
    platforms: dict[str, PlatformRules]

    def get(self, key: str) -> PlatformRules:
        rules = self.platforms.get(key.strip().lower())
        if rules is None:
            raise UnknownPlatform(
                f"Chorus knows no platform {key!r}.", known=sorted(self.platforms)
            )
        return rules

    def resolve(
        self, platform: str | None, handle: str | None, profile_url: str | None
    ) -> tuple[PlatformRules, str, str]:
        """(platform rules, handle as shown, handle key) from a platform and handle, or from a
        profile URL (with a platform given too, they must agree)."""
        if profile_url is not None:
            rules, raw_handle = self.parse_url(profile_url)
            if platform is not None and self.get(platform).key != rules.key:
                raise PlatformMismatch(
                    f"The URL is a {rules.name} profile, not {platform}.", platform=rules.key
                )
        else:
            if platform is None or handle is None:
                raise InvalidHandle("Give a platform and a handle, or a profile URL.")
            rules, raw_handle = self.get(platform), handle
        shown, key = rules.normalise(raw_handle)
        return rules, shown, key

    def parse_url(self, url: str) -> tuple[PlatformRules, str]:
        """The platform and handle a profile URL points at."""
        location = _location(url)
        for rules in sorted(self.platforms.values(), key=lambda r: (r.url_priority, r.key)):
            for pattern in rules.url_res:
                match = pattern.match(location)
                if match:
                    return rules, rules.handle_from_url.format(**match.groupdict())
        raise InvalidProfileUrl(f"{url!r} is not a profile URL of a known platform.")


def _location(url: str) -> str:
    """host + path, with scheme, www./m. and query dropped: what the URL patterns match."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidProfileUrl("The URL is too long.")
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError as exc:
        raise InvalidProfileUrl(f"{url!r} is not a URL.") from exc
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise InvalidProfileUrl(f"{url!r} is not an http(s) URL.")
    for prefix in HOST_PREFIXES:
        if host.startswith(prefix):
            host = host[len(prefix) :]
            break
    return host + parts.path.rstrip("/")


async def load_registry(session: AsyncSession) -> Registry:
    rows = (await session.execute(select(Platform))).scalars()
    return Registry({row.key: PlatformRules.from_row(row) for row in rows})
