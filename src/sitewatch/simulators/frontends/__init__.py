"""Simulated devices behind real protocols: Modbus TCP servers, OCPP charge points, MQTT devices."""
