"""Checks that the client Chanx's generator wrote for one example imports
and that each of its channels has typed unions of what it receives and
sends: no empty union, no `Any` stand-in.

Usage: python imports.py NAME   (the package is generated.NAME_client)
"""

import importlib
import pathlib
import sys
import typing

name = sys.argv[1]
package = importlib.import_module(f"generated.{name}_client")
root = pathlib.Path(package.__file__).parent
# `shared` holds the schemas several channels use; it has no unions.
channels = [
    path.name
    for path in root.iterdir()
    if (path / "messages.py").exists() and path.name != "shared"
]
if not channels:
    raise SystemExit(f"FAIL {name}: no channel was generated")
for channel in sorted(channels):
    messages = importlib.import_module(f"generated.{name}_client.{channel}.messages")
    for union in ("IncomingMessage", "OutgoingMessage"):
        value = getattr(messages, union)
        members = typing.get_args(value) or (value,)
        if not members or any(member is typing.Any for member in members):
            raise SystemExit(f"FAIL {name}.{channel}: {union} is {value!r}")
    incoming = len(typing.get_args(messages.IncomingMessage) or (messages.IncomingMessage,))
    outgoing = len(typing.get_args(messages.OutgoingMessage) or (messages.OutgoingMessage,))
    print(f"ok   generated Python client for {name}/{channel}: {incoming} incoming, {outgoing} outgoing message types")
