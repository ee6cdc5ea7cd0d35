"""The site gateway: devices' own protocols in, contract messages over MQTT out, nothing lost."""
