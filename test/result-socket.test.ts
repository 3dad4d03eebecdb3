/**
 * The host's end of the result channel (harness/qemu/result-socket.ts), against a unix socket
 * server standing in for QEMU's: connecting before the server listens, every byte to the file
 * and the handler, the close, no attempt once the boot is ending, the bounded wait for the end.
 */
import { expect } from 'chai';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ResultSocket } from '../harness/qemu/result-socket.ts';
import { endStream } from '../harness/qemu/streams.ts';

describe('the result socket (harness/qemu/result-socket.ts)', () => {
  let dir: string;
  let servers: net.Server[];
  beforeEach(() => {
    dir = mkdtempSync(path.join('/tmp', 'rp-resock-'));
    servers = [];
  });
  afterEach(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A server that, on connection, does `then` with the peer socket. */
  function listen(sockPath: string, then: (peer: net.Socket) => void): Promise<net.Server> {
    const server = net.createServer(then);
    servers.push(server);
    return new Promise((resolve) => server.listen(sockPath, () => resolve(server)));
  }

  it('connects once the server listens, writes every byte to the file and the handler, and sees the close', async () => {
    const sockPath = path.join(dir, 'res.sock');
    const file = path.join(dir, 'result.stream');
    const ws = createWriteStream(file);
    const chunks: Buffer[] = [];
    let closes = 0;
    const payload = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const rs = new ResultSocket({
      socketPath: sockPath,
      file: ws,
      onData: (c) => chunks.push(c),
      onClose: () => closes++,
      keepTrying: () => true,
      retryMs: 5,
    });
    rs.connect(); // nothing listens yet: it retries
    await new Promise((r) => setTimeout(r, 60));
    expect(rs.connected).to.equal(false);
    await listen(sockPath, (peer) => peer.end(payload));
    await new Promise<void>((resolve) => {
      const poll = (): void => void (closes > 0 ? resolve() : setTimeout(poll, 5));
      poll();
    });
    await rs.drain(1000);
    await endStream(ws);
    expect(rs.connected).to.equal(true);
    expect(closes).to.equal(1);
    expect(Buffer.concat(chunks).equals(payload)).to.equal(true);
    expect(readFileSync(file).equals(payload)).to.equal(true);
  });

  it('makes no attempt once keepTrying says no', async () => {
    const sockPath = path.join(dir, 'res.sock');
    let peers = 0;
    await listen(sockPath, () => peers++);
    const rs = new ResultSocket({ socketPath: sockPath, file: createWriteStream(path.join(dir, 'r')), keepTrying: () => false });
    rs.connect();
    await new Promise((r) => setTimeout(r, 100));
    expect(rs.connected).to.equal(false);
    expect(peers).to.equal(0);
  });

  it('stops retrying when keepTrying turns false while nothing listens', async () => {
    const sockPath = path.join(dir, 'res.sock');
    let tries = 0;
    let keep = true;
    const rs = new ResultSocket({
      socketPath: sockPath,
      file: createWriteStream(path.join(dir, 'r')),
      keepTrying: () => {
        if (keep) tries++;
        return keep;
      },
      retryMs: 5,
    });
    rs.connect();
    await new Promise((r) => setTimeout(r, 60));
    expect(tries).to.be.above(1);
    keep = false;
    await new Promise((r) => setTimeout(r, 20));
    const after = tries;
    await listen(sockPath, () => {});
    await new Promise((r) => setTimeout(r, 60));
    expect(tries).to.equal(after);
    expect(rs.connected).to.equal(false);
  });

  it('drain cuts a connection whose far end never closes after the time given', async () => {
    const sockPath = path.join(dir, 'res.sock');
    const peers: net.Socket[] = [];
    await listen(sockPath, (peer) => peers.push(peer)); // holds the connection open
    let closes = 0;
    const rs = new ResultSocket({
      socketPath: sockPath,
      file: createWriteStream(path.join(dir, 'r')),
      onClose: () => closes++,
      keepTrying: () => true,
    });
    rs.connect();
    while (!rs.connected) await new Promise((r) => setTimeout(r, 5));
    const t0 = Date.now();
    await rs.drain(200);
    expect(Date.now() - t0).to.be.within(150, 1000);
    expect(closes).to.equal(1);
    for (const p of peers) p.destroy();
  });

  it('drain returns at once when it never connected, and no attempt follows it', async () => {
    let tries = 0;
    const rs = new ResultSocket({
      socketPath: path.join(dir, 'none.sock'),
      file: createWriteStream(path.join(dir, 'r')),
      keepTrying: () => {
        tries++;
        return true;
      },
      retryMs: 5,
    });
    rs.connect();
    const t0 = Date.now();
    await rs.drain(5000);
    expect(Date.now() - t0).to.be.below(100);
    const after = tries;
    await new Promise((r) => setTimeout(r, 60));
    expect(tries).to.equal(after);
  });
});
