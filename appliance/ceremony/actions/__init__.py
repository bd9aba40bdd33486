"""Action implementations, one module per layer, bound into a `Registry` by `bind_all`.

Each module has `bind(registry)`. A layer module imports its layer lazily; when the layer
is absent or lacks the API, its actions stay declared but unbound with the reason, and the
engine refuses to start scripts that use them.
"""

from __future__ import annotations

import importlib

from appliance.ceremony.registry import Registry

#: Binder modules, by the layer they adapt.
BINDERS: tuple[tuple[str, str], ...] = (
    ("appliance.ceremony.actions.basic", "engine"),
    ("appliance.ceremony.actions.hsm", "appliance.hsm"),
    ("appliance.ceremony.actions.dnssec", "appliance.dnssec"),
    ("appliance.ceremony.actions.outputs", "appliance.outputs"),
    ("appliance.ceremony.actions.sharing", "appliance.sharing"),
)


def bind_all(registry: Registry) -> None:
    for module_name, layer in BINDERS:
        try:
            importlib.import_module(module_name).bind(registry)
        except ImportError as exc:
            for name in registry.names():
                spec = registry.spec(name)
                if spec is not None and spec.layer == layer:
                    registry.unavailable(name, f"waits for {layer} (cannot import: {exc.name})")
