#!/usr/bin/env python3
"""Slow clients against a running wxportal: N connections that send their request headers one byte every
few seconds (reopened as soon as the server cuts them), while a real, signed message is posted every half
second. Prints how long the real messages took and how long the server let a slow connection live.

    python3 bench/slowloris.py HOST:PORT TOKEN [CONNECTIONS] [SECONDS]
"""
import asyncio, hashlib, random, statistics, sys, time

host, port = sys.argv[1].split(":")
token = sys.argv[2]
connections = int(sys.argv[3]) if len(sys.argv) > 3 else 500
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 30
lifetimes, latencies, failures = [], [], []


async def slow_client(deadline):
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"POST /wechat HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
            while time.monotonic() < deadline:
                try:
                    # The server answering or closing ends this client's life.
                    await asyncio.wait_for(reader.read(1024), timeout=5)
                    lifetimes.append(time.monotonic() - started)
                    break
                except asyncio.TimeoutError:
                    writer.write(b"X")
                    await writer.drain()
            writer.close()
        except (ConnectionError, OSError):
            lifetimes.append(time.monotonic() - started)
            await asyncio.sleep(0.1)


async def real_message(n):
    timestamp, nonce = str(int(time.time())), str(random.randrange(10**9))
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    body = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[oSlow{n:06}]]>"
            f"</FromUserName><CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[hi {n}]]></Content><MsgId>{random.randrange(10**15)}</MsgId></xml>").encode()
    request = (f"POST /wechat?signature={signature}&timestamp={timestamp}&nonce={nonce} HTTP/1.1\r\n"
               f"Host: x\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), timeout=10)
        writer.close()
        if not answer.startswith(b"HTTP/1.1 200"):
            failures.append(answer[:40])
        latencies.append(time.monotonic() - started)
    except Exception as e:  # noqa: BLE001 - any failure is what we count
        failures.append(repr(e))


async def main():
    deadline = time.monotonic() + seconds
    slow = [asyncio.create_task(slow_client(deadline)) for _ in range(connections)]
    await asyncio.sleep(2)
    n = 0
    while time.monotonic() < deadline - 1:
        await real_message(n)
        n += 1
        await asyncio.sleep(0.5)
    await asyncio.gather(*slow)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    print(f"{connections} slow connections for {seconds:.0f} s: {len(latencies)} real messages, "
          f"{len(failures)} failed; latency p50 {1000 * statistics.median(latencies):.1f} ms, "
          f"p99 {1000 * p99:.1f} ms, max {1000 * max(latencies):.1f} ms")
    cut = [t for t in lifetimes if t < seconds - 1]
    if cut:
        print(f"slow connections cut by the server: {len(cut)}, after {min(cut):.1f}–{max(cut):.1f} s "
              f"(median {statistics.median(cut):.1f} s)")
    if failures:
        print("failures:", failures[:3])


asyncio.run(main())
