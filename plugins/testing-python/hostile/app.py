"""A Python plugin that misbehaves on purpose, as its `mode` setting says, for the host's tests:
the sandbox must contain it with the same clear errors as a Rust plugin.

- `loop`: transform never returns (the call deadline must interrupt it);
- `bomb`: transform allocates without end (the memory limit must stop it);
- `socket`: transform connects to `address` over TCP and resolves `host`, and writes one row per
  attempt saying how it ended (both must be denied, and nothing reach the address);
- `raise`: transform raises an exception (a trap naming it);
- `ok`: one row per record.
"""

import socket

import sluice_plugin as sp

NAME, VERSION = sp.project()


class Plugin(sp.RecordPlugin):
    name, version = NAME, VERSION
    doc = "A test plugin that misbehaves on purpose."
    table, table_doc = "outcomes", "One row per record, or per network attempt."
    fields = [sp.Field("value", sp.STRING, doc="A value.")]
    settings = [
        sp.Setting("mode", "loop, bomb, socket, raise or ok.", "ok"),
        sp.Setting("address", "ip:port the socket mode connects to.", "203.0.113.1:80"),
        sp.Setting("host", "The name the socket mode resolves.", "localhost"),
    ]

    def configure(self, settings):
        self.mode, self.address, self.host = settings["mode"], settings["address"], settings["host"]


def attempt(what, action):
    try:
        action()
        return f"{what}: succeeded"
    except OSError as error:
        return f"{what}: {type(error).__name__}"


_export = sp.export(Plugin)


def _misbehave(plugin, batch_values):
    if plugin.mode == "loop":
        while True:
            pass
    if plugin.mode == "bomb":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if plugin.mode == "raise":
        raise RuntimeError("deliberate failure in a test plugin")
    if plugin.mode == "socket":
        ip, port = plugin.address.rsplit(":", 1)
        # Hosts as bytes: CPython for WebAssembly has no `idna` codec to encode a str host with.
        return [attempt("tcp", lambda: socket.socket().connect((ip.encode(), int(port)))),
                attempt("lookup", lambda: socket.getaddrinfo(plugin.host.encode(), 80))]
    return batch_values


if _export is not None:
    class Source(_export):
        def transform(self, input):
            from wit_world.imports import types as t
            plugin = _export.plugin
            if plugin.mode == "ok":
                return super().transform(input)
            values = _misbehave(plugin, [])
            data, offsets = bytearray(), [0]
            for value in values:
                data += value.encode()
                offsets.append(len(data))
            column = t.ColumnData(valid=[], values=t.ColumnValues_String(t.StringValues(offsets=offsets, data=bytes(data))))
            rows = t.TableRows(table="outcomes", inputs=[0] * len(values), columns=[column])
            return t.Transformed(tables=[rows] if values else [], rejected=[])
