"""What the site gateway and the simulated devices share: the connector interface the gateway loads,
the device protocols' codecs (Modbus registers, OCPP payloads) and the Sparkplug-style session.

Builds only on the contract and the settings; see docs/architecture.md.
"""
