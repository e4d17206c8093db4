"""Encode and decode: pure functions between datagrams and typed messages, checked
against the table."""

from __future__ import annotations

from typing import Any

from bridge.errors import BadMessageError
from bridge.osc import Codec, WireMessage, build_datagram, parse_datagram
from bridge.protocol.fields import Group, check_values
from bridge.protocol.messages import Message
from bridge.protocol.table import BY_ADDRESS, BY_TYPE, MAX_PACKET_BYTES


def encode(message: Message) -> bytes:
    """The datagram for `message`, validated against the table (BadMessageError if not)."""
    spec = BY_TYPE.get(type(message))
    if spec is None:
        raise BadMessageError(f"not a protocol message: {message!r}", "build")
    address = spec.address
    args = check_values(spec.args, [getattr(message, name) for name, _ in spec.args], address)
    tags = spec.tags
    if spec.group is not None:
        group = spec.group
        items = getattr(message, group.field)
        _check_item_count(address, group, len(items))
        for index, item in enumerate(items):
            args += check_values(group.args, group.split(item), f"{address} {group.item} {index}")
        tags += group.tags * len(items)
    dgram = build_datagram(WireMessage(address, tags, tuple(args)))
    if len(dgram) > MAX_PACKET_BYTES:
        raise BadMessageError(
            f"{address}: encoded packet is {len(dgram)} bytes; at most {MAX_PACKET_BYTES}",
            "oversize",
        )
    return dgram


def decode(dgram: bytes) -> Message:
    """The typed message in `dgram`, or BadMessageError with a reason: oversize, bundle,
    parse, type_tags, unknown_address, arg_count or value."""
    if len(dgram) > MAX_PACKET_BYTES:
        raise BadMessageError(
            f"packet of {len(dgram)} bytes; at most {MAX_PACKET_BYTES}", "oversize"
        )
    wire = parse_datagram(dgram)
    spec = BY_ADDRESS.get(wire.address)
    if spec is None:
        raise BadMessageError(f"unknown address {wire.address[:60]!r}", "unknown_address")
    address, tags = spec.address, wire.tags
    fixed = len(spec.args)
    group = spec.group
    if group is None:
        if len(tags) != fixed:
            raise BadMessageError(
                f"{address}: expected {fixed} arguments ({spec.tags_pattern()}), "
                f"got {len(tags)} (,{tags})", "arg_count",
            )
        n_items = 0
    else:
        width = len(group.tags)
        if len(tags) < fixed or (len(tags) - fixed) % width:
            raise BadMessageError(
                f"{address}: expected {spec.tags_pattern()}, got {len(tags)} arguments "
                f"(,{tags[:40]})", "arg_count",
            )
        n_items = (len(tags) - fixed) // width
    expected = spec.tags + (group.tags * n_items if group is not None else "")
    if tags != expected:
        raise BadMessageError(
            f"{address}: expected type tags {spec.tags_pattern()}, got ,{tags[:40]}",
            "type_tags",
        )
    checked = check_values(spec.args, wire.args[:fixed], address)
    values: dict[str, Any] = {name: value for (name, _), value in zip(spec.args, checked,
                                                                     strict=True)}
    if group is not None:
        _check_item_count(address, group, n_items)
        width = len(group.args)
        values[group.field] = tuple(
            group.make(*check_values(group.args, wire.args[start:start + width],
                                     f"{address} {group.item} {index}"))
            for index, start in enumerate(range(fixed, fixed + n_items * width, width))
        )
    message: Message = spec.type(**values)
    return message


def _check_item_count(address: str, group: Group, count: int) -> None:
    if not group.min_items <= count <= group.max_items:
        raise BadMessageError(
            f"{address}: {count} {group.item}s; must be {group.min_items}..{group.max_items}",
            "arg_count",
        )


CODEC: Codec[Message] = Codec(encode, decode)
