#!/usr/bin/env python3
"""An independent Switchboard client, written from docs/PROTOCOL.md alone, on an off-the-shelf
Noise library (PyPI `noiseprotocol`) and `cryptography` for Ed25519. It registers over XX
(checking the server certificate), pings, then resumes over IK with the token (one round trip),
confirms the session with a ping, and checks every byte it gets against the document.

    usage: python_client.py HOST PORT ACCOUNT_NAME [--http | --https CA_FILE]
With --http or --https it speaks the same bytes over the HTTP fallback (section 24): one
`POST /v1/stream` per connection through the standard library's http.client, streaming chunked
both ways. Prints one line per step and exits 0 when everything matched.
"""
import http.client, os, socket, ssl, struct, sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization
from noise.connection import NoiseConnection, Keypair

PREFACE = b"SWBD\x01"                     # section 3; also the prologue (5.2)
XX, IK, XXFALLBACK, ERROR = 0x01, 0x02, 0x03, 0x7F   # section 4.1
HELLO, SERVER_HELLO, WELCOME, ERROR_STANZA, PING, PONG, GOODBYE = 1, 2, 3, 4, 5, 6, 7


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


# --- section 8: varints, fields, stanzas
def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data, offset):
    result, shift = 0, 0
    for i in range(10):
        if offset >= len(data):
            fail("truncated varint")
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, offset
        shift += 7
    fail("varint longer than 10 bytes")


def field_varint(number, value):
    return varint(number << 1) + varint(value)


def field_bytes(number, value):
    return varint(number << 1 | 1) + varint(len(value)) + value


def stanza(kind, body):
    return varint(kind) + varint(len(body)) + body


def parse_stanzas(data):
    """Returns [(type, {field: value})]; bytes fields as bytes, varints as int."""
    out, offset = [], 0
    while offset < len(data):
        kind, offset = read_varint(data, offset)
        length, offset = read_varint(data, offset)
        body, offset = data[offset:offset + length], offset + length
        fields, i = {}, 0
        while i < len(body):
            key, i = read_varint(body, i)
            if key & 1:
                n, i = read_varint(body, i)
                fields[key >> 1] = bytes(body[i:i + n])
                i += n
            else:
                fields[key >> 1], i = read_varint(body, i)
        out.append((kind, fields))
    return out


# --- section 24: the HTTP fallback, a socket-like object over one chunked POST
class ChunkedStream:
    def __init__(self, host, port, ca_file=None):
        if ca_file is None:
            self.conn = http.client.HTTPConnection(host, port, timeout=10)
        else:
            context = ssl.create_default_context(cafile=ca_file)
            self.conn = http.client.HTTPSConnection(host, port, timeout=10, context=context)
        self.conn.putrequest("POST", "/v1/stream", skip_accept_encoding=True)
        self.conn.putheader("Content-Type", "application/x-switchboard")
        self.conn.putheader("Transfer-Encoding", "chunked")
        self.conn.endheaders()
        # http.client hands the socket to the response once it sees `Connection: close` and
        # would dial anew on the next send: keep our own reference for the upload.
        self.sock = self.conn.sock
        self.response = None

    def sendall(self, data):
        # One unit per chunk, as section 24.2 asks of clients.
        self.sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")

    def recv(self, n):
        if self.response is None:
            self.response = self.conn.getresponse()
            if self.response.status != 200:
                fail(f"stream refused: {self.response.status} {self.response.read()}")
            if self.response.getheader("Transfer-Encoding") != "chunked":
                fail("stream response is not chunked")
        return self.response.read1(n)

    def close(self):
        self.sock.sendall(b"0\r\n\r\n")
        self.conn.close()
        if self.response is not None:
            self.response.close()


TRANSPORT = None


def connect(host, port):
    if TRANSPORT is None:
        return socket.create_connection((host, port))
    return ChunkedStream(host, port, None if TRANSPORT == "http" else TRANSPORT)


# --- sections 4 and 7: framing
def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            fail(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def send_handshake(sock, kind, message):
    sock.sendall(bytes([kind]) + struct.pack(">H", len(message)) + message)


def recv_handshake(sock):
    kind = recv_exactly(sock, 1)[0]
    (length,) = struct.unpack(">H", recv_exactly(sock, 2))
    return kind, recv_exactly(sock, length)


def send_transport(sock, noise, plaintext):
    ciphertext = noise.encrypt(plaintext)
    sock.sendall(struct.pack(">H", len(ciphertext)) + ciphertext)


def recv_transport(sock, noise):
    (length,) = struct.unpack(">H", recv_exactly(sock, 2))
    if length < 16:
        fail("transport frame shorter than its tag")
    return parse_stanzas(noise.decrypt(recv_exactly(sock, length)))


# --- section 11: server certificates
def check_certificate(certificate, server_key, trusted_root=None):
    if len(certificate) != 137 or certificate[0] != 1:
        fail("certificate has the wrong size or version")
    root, key, issued = certificate[1:33], certificate[33:65], certificate[65:73]
    signature = certificate[73:]
    signed = b"switchboard server certificate v1" + certificate[0:1] + root + key + issued
    Ed25519PublicKey.from_public_bytes(root).verify(signature, signed)  # raises if forged
    if key != server_key:
        fail("certificate is for another server key")
    if trusted_root is not None and root != trusted_root:
        fail("certificate signed by another root")
    return root


def noise_for(pattern, static_private):
    noise = NoiseConnection.from_name(f"Noise_{pattern}_25519_ChaChaPoly_SHA256".encode())
    noise.set_as_initiator()
    noise.set_prologue(PREFACE)
    noise.set_keypair_from_private_bytes(Keypair.STATIC, static_private)
    return noise


def ik_attempt(host, port, device, server_key, hello):
    """Sends the preface and IK message 1; returns the socket, the Noise state and the answer."""
    sock = connect(host, port)
    noise = noise_for("IK", device)
    noise.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, server_key)
    noise.start_handshake()
    sock.sendall(PREFACE)
    send_handshake(sock, IK, noise.write_message(hello))
    kind, message = recv_handshake(sock)
    if kind != IK:
        fail(f"expected an IK answer, got type {kind}")
    answer = parse_stanzas(noise.read_message(message))
    if not noise.handshake_finished or len(answer) != 1:
        fail(f"IK message 2 must finish the handshake and hold one stanza: {answer}")
    return sock, noise, answer[0]


def main():
    global TRANSPORT
    host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if len(sys.argv) > 4:
        TRANSPORT = "http" if sys.argv[4] == "--http" else sys.argv[5]
        print("transport:", "http" if TRANSPORT == "http" else "https")
    device = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())

    # --- first contact: XX (section 6.1)
    sock = connect(host, port)
    noise = noise_for("XX", device)
    noise.start_handshake()
    sock.sendall(PREFACE)
    send_handshake(sock, XX, noise.write_message())
    kind, message = recv_handshake(sock)
    if kind != XX:
        fail(f"expected an XX frame, got type {kind}")
    payload = noise.read_message(message)
    (stype, server_hello), = parse_stanzas(payload)
    if stype != SERVER_HELLO or server_hello.get(1) != 1:
        fail(f"expected ServerHello version 1, got {stype} {server_hello}")
    server_key = noise.noise_protocol.handshake_state.rs.public_bytes
    root = check_certificate(server_hello[5], server_key)
    print("XX: server hello from", server_hello[2].decode(), "certificate ok")
    hello = stanza(HELLO, field_varint(1, 1) + field_varint(2, 1) + field_bytes(3, name.encode())
                   + field_bytes(4, b"python") + field_bytes(7, b"interop/1"))
    send_handshake(sock, XX, noise.write_message(hello))
    if not noise.handshake_finished:
        fail("XX did not finish after message 3")
    (wtype, welcome), = recv_transport(sock, noise)
    if wtype != WELCOME:
        fail(f"expected Welcome, got {wtype} {welcome}")
    if welcome.get(7) != 1 or welcome.get(3) != name.encode():
        fail(f"welcome does not describe a new account {name}: {welcome}")
    token = welcome[4]
    print("XX: welcome account", welcome[1], "device", welcome[2], "token", len(token), "bytes")
    send_transport(sock, noise, stanza(PING, field_varint(1, 77)))
    if recv_transport(sock, noise) != [(PONG, {1: 77})]:
        fail("no pong 77")
    print("XX: ping/pong ok")
    sock.close()

    # --- returning client: IK with the token, one round trip (section 6.2)
    resume = stanza(HELLO, field_varint(1, 1) + field_varint(2, 3) + field_bytes(6, token))
    sock, noise, (wtype, welcome2) = ik_attempt(host, port, device, server_key, resume)
    if wtype != WELCOME:
        fail(f"expected Welcome in IK message 2, got {wtype} {welcome2}")
    if welcome2[1] != welcome[1] or welcome2[2] != welcome[2] or welcome2[4] == token:
        fail("resumed welcome names another device or did not rotate the token")
    print("IK: welcome in one round trip, token rotated")
    send_transport(sock, noise, stanza(PING, field_varint(1, 5)) + stanza(PING, field_varint(1, 6)))
    if recv_transport(sock, noise) != [(PONG, {1: 5}), (PONG, {1: 6})]:
        fail("no pongs 5 and 6 in one frame")
    print("IK: two pings in one frame, two pongs in one frame")

    # --- the old token again: refused (section 12)
    sock.close()
    sock, noise, (etype, error) = ik_attempt(host, port, device, server_key, resume)
    if etype != ERROR_STANZA or error.get(1) != 29:
        fail(f"expected token_replayed (29), got {etype} {error}")
    print("IK: replayed token refused with code 29")
    print("OK")


main()
