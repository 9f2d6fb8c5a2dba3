"""The wire model: what one client connection puts on the wire, byte for byte, by meter category.

* :mod:`sim.protocol.config` -- :class:`ProtocolConfig`, the scenario's ``protocol`` section;
* :mod:`sim.protocol.model` -- :class:`Protocol`: connect, disconnect, keep-alive and message costs, with TCP/IP;
* :mod:`sim.protocol.tls`, :mod:`sim.protocol.mqtt`, :mod:`sim.protocol.websocket` -- each layer's bytes;
* :mod:`sim.protocol.bytes` -- :class:`Bytes`, per direction and category.
"""

from sim.protocol.bytes import Bytes
from sim.protocol.config import ProtocolConfig
from sim.protocol.model import Protocol
from sim.protocol.mqtt import MQTT_MAX_REMAINING_LENGTH, mqtt_remaining_length_size
from sim.protocol.websocket import ws_frame_header_size

__all__ = ["MQTT_MAX_REMAINING_LENGTH", "Bytes", "Protocol", "ProtocolConfig", "mqtt_remaining_length_size",
           "ws_frame_header_size"]
