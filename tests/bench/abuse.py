#!/usr/bin/env python3
"""Connection abuse against a running sluice, with a good client measured meanwhile.

Opens IDLE connections that never send a byte and SLOWLORIS connections that trickle header
lines, all from one attacker address (127.0.0.2, another loopback address), while a good client
on 127.0.0.1 posts one record per request on a fresh connection. Prints the good client's
latency percentiles and error count, and how the attacker's connections ended.

Usage: abuse.py URL USER PASSWORD [--idle N] [--slowloris N] [--seconds S]
"""
import argparse
import asyncio
import base64
import json
import statistics
import time


async def idle(host, port, stats):
    try:
        reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0))
    except OSError:
        stats["connect_failed"] += 1
        return
    started = time.monotonic()
    data = await reader.read(4096)
    if b"too_many_connections" in data:
        stats["refused_503"] += 1
    else:
        stats["closed_by_server"] += 1
        stats["held_seconds"].append(time.monotonic() - started)
    writer.close()


async def slowloris(host, port, stats, stop):
    try:
        reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0))
    except OSError:
        stats["connect_failed"] += 1
        return
    started = time.monotonic()
    try:
        writer.write(b"POST /v1/sources/patients/records HTTP/1.1\r\nhost: x\r\n")
        while not stop.is_set():
            writer.write(b"x-slow: 1\r\n")
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(4096), 1.0)
            except asyncio.TimeoutError:
                continue
            if b"too_many_connections" in data:
                stats["refused_503"] += 1
                return
            break
        stats["slowloris_cut"] += 1
        stats["slowloris_held_seconds"].append(time.monotonic() - started)
    except (ConnectionError, OSError):
        stats["slowloris_cut"] += 1
        stats["slowloris_held_seconds"].append(time.monotonic() - started)
    finally:
        writer.close()


async def good_client(host, port, auth, seconds, latencies, errors):
    body = json.dumps({"PatientID": "good-client", "PatientGender": "Female"}).encode()
    request = (
        f"POST /v1/sources/patients/records HTTP/1.1\r\nhost: {host}\r\nauthorization: {auth}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=("127.0.0.1", 0)), 10)
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            if answer.startswith(b"HTTP/1.1 202"):
                latencies.append(time.monotonic() - started)
            else:
                errors.append(answer.split(b"\r\n", 1)[0].decode(errors="replace"))
        except (OSError, asyncio.TimeoutError) as error:
            errors.append(type(error).__name__)
        await asyncio.sleep(0.02)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("user")
    parser.add_argument("password")
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--slowloris", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=40)
    args = parser.parse_args()
    host, port = args.url.removeprefix("http://").rstrip("/").split(":")
    port = int(port)
    auth = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    stats = {"refused_503": 0, "closed_by_server": 0, "connect_failed": 0, "held_seconds": [],
             "slowloris_cut": 0, "slowloris_held_seconds": []}
    stop = asyncio.Event()
    attackers = [asyncio.create_task(idle(host, port, stats)) for _ in range(args.idle)]
    attackers += [asyncio.create_task(slowloris(host, port, stats, stop)) for _ in range(args.slowloris)]
    latencies, errors = [], []
    await good_client(host, port, auth, args.seconds, latencies, errors)
    stop.set()
    await asyncio.wait(attackers, timeout=60)
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else float("nan")
    held = stats.pop("held_seconds")
    slow_held = stats.pop("slowloris_held_seconds")
    print(f"good client: {len(latencies)} accepted, {len(errors)} failed {sorted(set(errors))[:5]}; "
          f"latency median {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms")
    print(f"attacker ({args.idle} idle, {args.slowloris} slowloris from 127.0.0.2): {stats}; "
          f"idle held for at most {max(held, default=0):.1f} s, slowloris cut after at most "
          f"{max(slow_held, default=0):.1f} s (median {statistics.median(slow_held) if slow_held else 0:.1f} s)")


asyncio.run(main())
