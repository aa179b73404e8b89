"""What a file is, from its first bytes (magic numbers), and whether its label agrees.

The library takes the formats social posts carry: PNG, JPEG, GIF, WebP, MP4 and QuickTime
video, and PDF. SVG is refused even though it is an image: it is XML that can carry scripts and
external references, and a downloaded or embedded SVG runs them in the viewer's origin.

A declared type (the part's Content-Type) or a file name extension is a claim; the bytes decide.
A claim for a known type that the bytes contradict is a mislabelled file; no claim at all (no
Content-Type, or the browsers' ``application/octet-stream`` for an extension they do not know)
is not a lie, and the sniffed type is used.
"""

from __future__ import annotations

from typing import Final

PNG: Final = "image/png"
JPEG: Final = "image/jpeg"
GIF: Final = "image/gif"
WEBP: Final = "image/webp"
MP4: Final = "video/mp4"
QUICKTIME: Final = "video/quicktime"
PDF: Final = "application/pdf"
SVG: Final = "image/svg+xml"

ACCEPTED: Final = frozenset({PNG, JPEG, GIF, WEBP, MP4, QUICKTIME, PDF})

# Enough to see every signature below; SVG's "<svg" can come after an XML prolog, a doctype
# and comments, so it is looked for in a longer head.
SIGNATURE_BYTES: Final = 16
HEAD_BYTES: Final = 4096

# ISO base media brands of plain MP4 video (ftyp box, bytes 8 to 12). HEIF images share the
# container (brands heic, mif1...) and are not video: they stay unknown.
_MP4_BRANDS: Final = frozenset(
    {
        b"isom",
        b"iso2",
        b"iso3",
        b"iso4",
        b"iso5",
        b"iso6",
        b"mp41",
        b"mp42",
        b"avc1",
        b"M4V ",
        b"M4VH",
        b"M4VP",
        b"dash",
        b"MSNV",
    }
)

# The names clients send for the accepted types, to their canonical name.
_ALIASES: Final = {
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "image/x-png": PNG,
    "application/x-pdf": PDF,
    "video/x-m4v": MP4,
    "video/x-quicktime": QUICKTIME,
}
# What a client says when it does not know: no claim.
NO_CLAIM: Final = frozenset({"", "application/octet-stream", "binary/octet-stream"})

EXTENSIONS: Final = {
    "png": PNG,
    "jpg": JPEG,
    "jpeg": JPEG,
    "jpe": JPEG,
    "jfif": JPEG,
    "gif": GIF,
    "webp": WEBP,
    "mp4": MP4,
    "m4v": MP4,
    "mov": QUICKTIME,
    "qt": QUICKTIME,
    "pdf": PDF,
    "svg": SVG,
    "svgz": SVG,
}


def sniff(head: bytes) -> str | None:
    """The media type of a file starting with `head`, or None when it is none Chorus knows.
    Pass at least HEAD_BYTES bytes (or the whole file if shorter) so SVG is recognised."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return QUICKTIME
        if brand in _MP4_BRANDS:
            return MP4
        return None
    if head.startswith(b"%PDF-"):
        return PDF
    if _looks_like_svg(head):
        return SVG
    return None


def _looks_like_svg(head: bytes) -> bool:
    text = head[:HEAD_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg"):
        return True
    # An XML document (or one opening with a comment or doctype) whose root is svg.
    return text.startswith((b"<?xml", b"<!--", b"<!doctype")) and b"<svg" in text


def canonical(declared: str | None) -> str:
    """A declared Content-Type without parameters, lower-cased, aliases resolved."""
    media_type = (declared or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(media_type, media_type)


def extension_type(filename: str | None) -> str | None:
    """The type a file name's extension claims, if it is one Chorus knows."""
    if not filename or "." not in filename:
        return None
    return EXTENSIONS.get(filename.rsplit(".", 1)[1].strip().lower())
