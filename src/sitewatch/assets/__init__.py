"""The asset registry: hierarchy, compounds, buildings, assets, device bindings, owners and maintainers."""
