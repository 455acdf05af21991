"""Connecting a driver to a running Ray cluster, with an error that says what to do.

Ray 2.60 starts a cluster (``ray start --head``) with token authentication whenever a token is
at hand: ``~/.ray/auth_token``, which Ray's first local ``ray.init()`` on a machine writes (a
local search or encoding run of this plugin does), or ``RAY_AUTH_MODE=token`` with
``RAY_AUTH_TOKEN``. A driver given an explicit address sends its token only under
``RAY_AUTH_MODE=token``; otherwise the cluster refuses it and Ray reports, after about 20 s,
only "Failed to connect to Ray cluster"."""

import os
from pathlib import Path


class ClusterConnectionError(ValueError):
    """The Ray cluster at a given address could not be reached or refused this driver."""


def token_sources():
    """Where this process would find a Ray authentication token, as words (empty: nowhere)."""
    sources = [f"${name}" for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
               if os.environ.get(name)]
    default = Path.home() / ".ray" / "auth_token"
    if default.is_file():
        sources.append(str(default))
    return sources


def connect_to_cluster(address, **init_kwargs):
    """``ray.init(address=address, **init_kwargs)``; a refused or failed connection becomes a
    :class:`ClusterConnectionError` naming the address, the check to run and, for token
    authentication, the setting that sends the token."""
    import ray

    try:
        ray.init(address=address, **init_kwargs)
    except (ConnectionError, ray.exceptions.AuthenticationError) as error:
        raise ClusterConnectionError(connection_advice(address, error)) from None


def connection_advice(address, error):
    mode = os.environ.get("RAY_AUTH_MODE")
    lines = [f"cannot connect to the Ray cluster at {address}: {error}",
             f"  check that `ray status --address={address}` works from this machine "
             "(the head's address and port as `ray start --head` printed them)."]
    if (mode or "").lower() != "token":
        tokens = token_sources()
        have = f" (this machine has one: {', '.join(tokens)})" if tokens else ""
        lines.append(
            "  If the cluster uses token authentication (Ray's default when `ray start` finds a "
            f"token){have}, this driver must send it: run with RAY_AUTH_MODE=token and the "
            "cluster's token in ~/.ray/auth_token or $RAY_AUTH_TOKEN "
            f"(RAY_AUTH_MODE is {repr(mode) if mode is not None else 'unset'} here).")
    else:
        lines.append("  RAY_AUTH_MODE=token is set: check that this driver's token "
                     f"({', '.join(token_sources()) or 'none found'}) is the cluster's.")
    return "\n".join(lines)
