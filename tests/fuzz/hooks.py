"""Schemathesis hooks of the fuzz run, loaded by the schemathesis process (SCHEMATHESIS_HOOKS),
not by pytest.

Two things the generated requests need to get past the front door:
- a principal the service accepts: signed with the internal key, as the gateway does, and
  signed again well before its 60 s expiry, since one run lasts minutes;
- ids that exist: a random district id or UUID answers 404 before any rule runs, so about half
  the time a parameter or top-level body field whose name is known (``district_id``,
  ``post_id``...) takes one of the seeded values instead. The choice is a Hypothesis draw, so
  the run's seed replays it.

Both come from the environment the test sets (CHORUS_FUZZ_*), so the same file serves every
service.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

from chassis.principal import PRINCIPAL_HEADER, sign_principal

INTERNAL_KEY = os.environ["CHORUS_FUZZ_INTERNAL_KEY"].encode()
PRINCIPAL = json.loads(os.environ["CHORUS_FUZZ_PRINCIPAL"])
KNOWN: dict[str, list[Any]] = json.loads(os.environ.get("CHORUS_FUZZ_KNOWN", "{}"))


# A header lives 60 s; re-signing every 20 s leaves a slow request plenty of margin.
@schemathesis.auth(refresh_interval=20)
class SignedPrincipal:
    def get(self, case: Any, ctx: Any) -> str:
        return sign_principal(INTERNAL_KEY, sub=PRINCIPAL["sub"], grants=PRINCIPAL["grants"])

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), PRINCIPAL_HEADER: data}


def _with_known_values(values: Any) -> Any:
    """A strategy of `values` where each known name may take a seeded value instead."""
    if not isinstance(values, dict):
        return st.just(values)
    names = [name for name in values if KNOWN.get(name)]
    if not names:
        return st.just(values)
    choices = st.tuples(
        *(st.one_of(st.just(values[name]), st.sampled_from(KNOWN[name])) for name in names)
    )
    return choices.map(lambda chosen: {**values, **dict(zip(names, chosen, strict=True))})


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    return _with_known_values(path_parameters)


@schemathesis.hook
def flatmap_query(context: Any, query: Any) -> Any:
    return _with_known_values(query)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return _with_known_values(body)
