#!/usr/bin/env python3
"""Server residence time of request/reply pairs on one loopback TCP port, from the kernel's own
packet timestamps: where a PING's round trip is spent, in the server or outside it.

    sudo python3 scripts/services/residence.py --server-port 6381 [--client-port 40001] --seconds 5

It opens an AF_PACKET socket on `lo` with a classic BPF filter for IPv4 TCP to or from one port
(the client's, when given: `ctlping --local-port`, so only that connection's packets reach it even
when a flood shares the server's port; else the server's), asks for SO_TIMESTAMPNS
(the time each packet passed the loopback device), keeps one copy of each packet (outgoing) and
pairs every client→server segment carrying data with the next server→client segment carrying
data on the same connection. The difference is the server's residence time: from the request
entering the server's socket to the reply leaving it. The client's share of a round trip is
what ctlping measures minus this. Needs CAP_NET_RAW (root here). Bounded: stops after --seconds.
"""
import argparse
import ctypes
import json
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4


def bpf_tcp_port(port):
    """tcp port PORT, IPv4, unfragmented: accept the packet, else drop (cBPF, as tcpdump -dd)."""
    BPF_LD_H_ABS, BPF_LD_B_ABS, BPF_LDX_B_MSH, BPF_LD_H_IND = 0x28, 0x30, 0xB1, 0x48
    BPF_JEQ_K, BPF_JSET_K, BPF_RET_K = 0x15, 0x45, 0x06
    prog = [
        (BPF_LD_H_ABS, 0, 0, 12),           # 0 ethertype
        (BPF_JEQ_K, 0, 9, 0x0800),           # 1 IPv4? else drop (11); jumps count from the next
        (BPF_LD_B_ABS, 0, 0, 23),            # 2 protocol
        (BPF_JEQ_K, 0, 7, 6),                # 3 TCP? else drop
        (BPF_LD_H_ABS, 0, 0, 20),            # 4 fragment offset
        (BPF_JSET_K, 5, 0, 0x1FFF),          # 5 a fragment: drop
        (BPF_LDX_B_MSH, 0, 0, 14),           # 6 x = IP header length
        (BPF_LD_H_IND, 0, 0, 14),            # 7 source port
        (BPF_JEQ_K, 3, 0, port),             # 8 → accept (12)
        (BPF_LD_H_IND, 0, 0, 16),            # 9 destination port
        (BPF_JEQ_K, 1, 0, port),             # 10 → accept
        (BPF_RET_K, 0, 0, 0),                # 11 drop
        (BPF_RET_K, 0, 0, 0x40000),          # 12 accept
    ]
    buf = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    return buf, len(prog)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server-port", type=int, required=True)
    ap.add_argument("--client-port", type=int, help="only this connection (its client end's port)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json")
    args = ap.parse_args()

    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind(("lo", 0))
    code, n = bpf_tcp_port(args.client_port or args.server_port)
    cbuf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", n, ctypes.addressof(cbuf))
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    waiting = {}  # client port → request timestamp (ns)
    residence = []
    deadline = [time.monotonic() + args.seconds]
    # SIGTERM ends the capture early (within the 0.5 s select) and still prints the result.
    signal.signal(signal.SIGTERM, lambda *_: deadline.__setitem__(0, 0))
    print("residence: capturing", file=sys.stderr, flush=True)
    while True:
        left = deadline[0] - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], min(left, 0.5))
        if not r:
            continue
        try:
            data, anc, _flags, addr = s.recvmsg(256, 64)
        except InterruptedError:
            continue
        if addr[2] != PACKET_OUTGOING:
            continue  # loopback shows each packet twice: keep the outgoing copy
        ts = None
        for level, kind, val in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", val[:16])
                ts = sec * 1_000_000_000 + nsec
        if ts is None or len(data) < 14 + 20:
            continue
        ip = data[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        if len(tcp) < 20:
            continue
        sport, dport = struct.unpack("!HH", tcp[:4])
        thl = (tcp[12] >> 4) * 4
        payload = total - ihl - thl
        if payload <= 0:
            continue  # a pure ACK
        if args.client_port and args.client_port not in (sport, dport):
            continue
        if dport == args.server_port:  # request
            waiting.setdefault(sport, ts)
        elif sport == args.server_port and dport in waiting:
            residence.append(ts - waiting.pop(dport))
    s.close()
    if not residence:
        print(json.dumps({"samples": 0, "error": f"no request/reply pair seen on port {args.server_port}"}))
        return 1
    residence.sort()

    def pct(p):
        return round(residence[min(len(residence) - 1, int(p / 100 * len(residence)))] / 1000, 1)

    out = {"samples": len(residence), "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99),
           "p999_us": pct(99.9), "max_us": round(residence[-1] / 1000, 1)}
    print(json.dumps(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out | {"all_ns": residence}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
