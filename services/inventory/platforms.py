"""The platform registry: handle rules and profile URL patterns, read from the `platforms`
table (adding a platform is a row, not code).

A profile URL is parsed in three passes, so that its 422 names the real cause. A URL on a
platform's own host (the host part of its URL patterns: `x.com`, `twitter.com`) is only ever
that platform's; only other URLs are tried against a platform on any host (Mastodon).

1. a platform's URL pattern matches: that platform and handle (the handle is then checked
   by `normalise`, as a handle given with its platform is);
2. otherwise, a URL with a profile URL's shape (each named group of a pattern opened to any
   path segment: `x.com/<anything>`) names its platform, and its handle is checked by that
   platform's rules: the answer is the same `invalid-handle` 422, detail and pattern, as the
   platform and handle given apart would get;
3. otherwise it is `invalid-profile-url`: on a platform's host (`x.com/a/b`) the detail says
   what that platform's profile URLs look like; on any other host it is "not a profile URL
   of a known platform" and `known_hosts` lists the hosts Chorus knows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
    # The same patterns with each named group opened to one path segment (see the module
    # docstring): a URL of a profile's shape whose handle breaks the rules.
    url_shape_res: tuple[re.Pattern[str], ...]
    # The fixed hosts of the patterns (none for a platform on any domain, like Mastodon).
    url_host_res: tuple[re.Pattern[str], ...]
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
            url_shape_res=_compiled(_open_named_groups(p) for p in row.url_patterns),
            url_host_res=_compiled(_fixed_host(p) for p in row.url_patterns),
            handle_from_url=row.handle_from_url,
            url_priority=row.url_priority,
            dormant_after_days=row.dormant_after_days,
        )

    def normalise(self, handle: str) -> tuple[str, str]:
        """(the handle as it is shown, the key that makes it unique on the platform)."""
        shown = handle.strip().removeprefix("@")
        if len(shown) > MAX_HANDLE_LENGTH or not self.handle_re.fullmatch(shown):
            raise InvalidHandle(
                f"{handle!r} is not a valid {self.name} handle: it must match"
                f" {self.handle_re.pattern}.",
                platform=self.key,
                pattern=self.handle_re.pattern,
            )
        return shown, shown if self.case_sensitive else shown.lower()

    def handle_in(self, location: str) -> str | None:
        """The handle a profile URL's location names, if one of the URL patterns matches."""
        return self._handle_by(self.url_res, location)

    def handle_in_shape(self, location: str) -> str | None:
        """The would-be handle of a location shaped like a profile URL (not yet checked)."""
        return self._handle_by(self.url_shape_res, location)

    def hosts(self, location: str) -> bool:
        """Whether the location is on one of this platform's fixed hosts."""
        return any(pattern.match(location) for pattern in self.url_host_res)

    def _handle_by(self, patterns: tuple[re.Pattern[str], ...], location: str) -> str | None:
        for pattern in patterns:
            match = pattern.match(location)
            if match:
                return self.handle_from_url.format(**match.groupdict())
        return None

    @property
    def known_host(self) -> str | None:
        """The host of its profile URLs as a user would recognise it (`x.com`), or None for a
        platform on any host (Mastodon: `https://{domain}/@{user}`)."""
        host = urlsplit(self.profile_url_template).hostname or "{"
        return None if "{" in host else _without_host_prefix(host)

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
        """The platform and handle a profile URL points at, or the 422 that says why it does
        not (the three passes of the module docstring)."""
        location = _location(url)
        ordered = sorted(self.platforms.values(), key=lambda r: (r.url_priority, r.key))
        # A URL on a platform's own host is that platform's profile or none: a platform on
        # any host (Mastodon) must not take `tiktok.com/@a`, whose handle is too short.
        on_host = [rules for rules in ordered if rules.hosts(location)]
        candidates = on_host or ordered
        for rules in candidates:
            handle = rules.handle_in(location)
            if handle is not None:
                return rules, handle
        for rules in candidates:
            handle = rules.handle_in_shape(location)
            if handle is not None:
                rules.normalise(handle)  # InvalidHandle: the handle is the cause
        if on_host:
            rules = on_host[0]
            raise InvalidProfileUrl(
                f"{url!r} is on {rules.name} but is not a profile URL; {rules.name} profile"
                f" URLs look like {rules.profile_url_template}.",
                platform=rules.key,
            )
        raise self._not_a_profile_url(url, ordered)

    @staticmethod
    def _not_a_profile_url(url: str, ordered: list[PlatformRules]) -> InvalidProfileUrl:
        known_hosts = sorted({r.known_host for r in ordered if r.known_host is not None})
        any_host = [
            f"{r.name} on any host ({r.profile_url_template})"
            for r in ordered
            if r.known_host is None
        ]
        known = "; ".join([", ".join(known_hosts), *any_host])
        return InvalidProfileUrl(
            f"{url!r} is not a profile URL of a known platform. Known: {known}.",
            known_hosts=known_hosts,
        )


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
    return _without_host_prefix(host) + parts.path.rstrip("/")


def _without_host_prefix(host: str) -> str:
    for prefix in HOST_PREFIXES:
        if host.startswith(prefix):
            return host[len(prefix) :]
    return host


def _compiled(sources: Iterable[str | None]) -> tuple[re.Pattern[str], ...]:
    """The derived patterns that compile. A registry row is data: a pattern this module cannot
    take apart only loses the better error, never the URL parsing itself."""
    patterns = []
    for source in sources:
        if source is None:
            continue
        try:
            patterns.append(re.compile(source))
        except re.error:
            continue
    return tuple(patterns)


def _open_named_groups(source: str) -> str | None:
    """`source` with the body of each outermost named group, `(?P<name>...)`, replaced by one
    path segment, `[^/]+`; None when no group is named (nothing to open)."""
    out: list[str] = []
    i = 0
    opened = False
    while i < len(source):
        if source.startswith("(?P<", i):
            name_end = source.find(">", i)
            end = _group_end(source, i)
            if name_end < 0 or end is None:
                return None
            out.append(source[i : name_end + 1] + "[^/]+)")
            i = end + 1
            opened = True
            continue
        step = _token_length(source, i)
        out.append(source[i : i + step])
        i += step
    return "".join(out) if opened else None


def _group_end(source: str, start: int) -> int | None:
    """The index of the `)` that closes the group opened at `start`."""
    depth = 0
    i = start
    while i < len(source):
        if source[i] == "(":
            depth += 1
        elif source[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += _token_length(source, i)
    return None


def _token_length(source: str, i: int) -> int:
    """How many characters from `i` form one token whose parentheses are not grouping: an
    escape (`\\(`) or a character class (`[()]`, `[]a]`, `[^]a]`); otherwise one."""
    if source[i] == "\\":
        return 2
    if source[i] != "[":
        return 1
    j = i + 1
    if j < len(source) and source[j] == "^":
        j += 1
    if j < len(source) and source[j] == "]":
        j += 1  # a leading ] is a literal
    while j < len(source) and source[j] != "]":
        j += 2 if source[j] == "\\" else 1
    return j + 1 - i


def _fixed_host(source: str) -> str | None:
    """A pattern matching the host part of `source` (up to its first `/`), or None when the
    host is open (it holds a named group, as Mastodon's any-domain does) or not found."""
    if not source.startswith("^") or "/" not in source:
        return None
    host = source[1 : source.index("/")]
    if "(?P<" in host:
        return None
    return f"^{host}(?:/|$)"


async def load_registry(session: AsyncSession) -> Registry:
    rows = (await session.execute(select(Platform))).scalars()
    return Registry({row.key: PlatformRules.from_row(row) for row in rows})
