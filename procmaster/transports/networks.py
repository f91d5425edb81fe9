"""Lists of trusted networks (``proxy-allow-ips``, ``forwarded-allow-ips``):
parsed once, asked per connection or request.

Theory of operation
-------------------
A list is the option's values split on commas and blanks: addresses
(``10.0.0.1``, ``::1``), networks in CIDR form (``10.0.0.0/8``), or ``*``
(everything). ``Networks.parse`` raises ``ValueError`` saying which item is
wrong; ``contains`` takes an address as text and answers False for anything
that is not an address (a unix socket's empty peer, garbage), never raising.

Must not know: sockets, options, where a list came from.
"""

from __future__ import annotations

import ipaddress

__all__ = ["Networks"]


class Networks:
    """A parsed list of networks; ``contains(address)``."""

    __slots__ = ("nets", "everything", "text")

    def __init__(self, nets: tuple, everything: bool, text: str) -> None:
        self.nets = nets
        self.everything = everything
        self.text = text

    @classmethod
    def parse(cls, values: list[str] | str) -> Networks:
        if isinstance(values, str):
            values = [values]
        items = [i for v in values for i in v.replace(",", " ").split()]
        nets = []
        everything = False
        for item in items:
            if item == "*":
                everything = True
                continue
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an address or a network (10.0.0.0/8, ::1, *)"
                ) from None
        if not items:
            raise ValueError("an empty list (give addresses, networks in CIDR form, or *)")
        return cls(tuple(nets), everything, " ".join(items))

    def contains(self, address: str) -> bool:
        if self.everything:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.nets)
