"""
A userspace Ethernet switch between TAP devices that can drop and delay frames: a stand-in for
`tc qdisc ... netem loss 25% delay 200ms 100ms`, which this machine's kernel lacks (no sch_netem).

Usage: python3 switch.py SEED TAP...   creates the TAP devices, prints "ready", then forwards
frames between them. Commands on stdin, one JSON object a line:
  {"loss": 0.25, "delayMs": 200, "jitterMs": 100}   impair every frame (each direction, each hop)
  {"loss": 0, "delayMs": 0, "jitterMs": 0}          heal
"""
import fcntl, heapq, json, os, random, selectors, struct, sys, time

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000


def open_tap(name):
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH22x', name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    rng = random.Random(int(sys.argv[1]))
    taps = [open_tap(name) for name in sys.argv[2:]]
    impair = {'loss': 0.0, 'delayMs': 0.0, 'jitterMs': 0.0}
    ports = {}  # MAC -> tap fd it was last seen on
    queue = []  # (due, seq, fd, frame)
    seq = 0
    sel = selectors.DefaultSelector()
    for fd in taps:
        sel.register(fd, selectors.EVENT_READ)
    sel.register(sys.stdin, selectors.EVENT_READ)
    print('ready', flush=True)

    def send(fd, frame):
        try:
            os.write(fd, frame)
        except OSError:
            pass  # the device is down or its queue is full: the frame is lost, as on a wire

    while True:
        timeout = None if not queue else max(0.0, queue[0][0] - time.monotonic())
        for key, _ in sel.select(timeout):
            if key.fileobj is sys.stdin:
                line = sys.stdin.readline()
                if line == '':
                    return
                impair.update(json.loads(line))
                continue
            src = key.fileobj
            while True:
                try:
                    frame = os.read(src, 65536)
                except BlockingIOError:
                    break
                except OSError:  # the device is gone (its namespace was deleted): nothing more from it
                    sel.unregister(src)
                    break
                if len(frame) < 14:
                    continue
                ports[frame[6:12]] = src
                dst = ports.get(frame[0:6])
                outs = [dst] if dst is not None and frame[0] & 1 == 0 else [fd for fd in taps if fd != src]
                for out in outs:
                    if out == src or rng.random() < impair['loss']:
                        continue
                    delay = impair['delayMs'] + rng.uniform(-impair['jitterMs'], impair['jitterMs'])
                    if delay <= 0:
                        send(out, frame)
                    else:
                        seq += 1
                        heapq.heappush(queue, (time.monotonic() + delay / 1000, seq, out, frame))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            send(out, frame)


if __name__ == '__main__':
    main()
