import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@streamanchor/stack';
import { CHROMIUM_PATH, runTurnserver, stunBindingAnswered } from '@streamanchor/testing';

/** The coturn config deployments use; the netns test runs it with its network added. */
export const COTURN_CONFIG_PATH = join(REPO_ROOT, 'infra/coturn/turnserver.conf');

/** Runs a command; throws with its stderr when it fails. */
export function run(command: string, args: string[], input?: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', input });
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${result.status}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result.stdout;
}

/**
 * Three hosts on one machine, each pair on its own veth link (/30):
 *
 *   client ns (Chromium) ── A ── root ns (the stack: gateway, relay, anvil on `stack`)
 *   client ns            ── C ── turn ns (coturn on `turn`, port 3478)
 *   turn ns (relays from `turnRelay`) ── B ── root ns
 *
 * Nothing forwards between links (no ip_forward), so the only path from the client to the
 * relay's UDP port other than A is coturn. The client's firewall (nftables, in its own
 * namespace: the machine's own ruleset is never touched) decides what may cross A.
 */
export interface Netns {
  id: string;
  client: string;
  turn: string;
  /** The stack's address (root ns, link A): gateway, anvil and the relay's ICE port. */
  stack: string;
  /** The client's address on link A. */
  clientAddress: string;
  /** The client's address on link C (the one coturn sees it at). */
  clientTurnLink: string;
  /** coturn's address as the client sees it (link C). */
  turnAddress: string;
  /** coturn's relay address (link B): what the relay sees as the peer. */
  turnRelay: string;
  /** Runs `command` inside namespace `ns`. */
  exec(ns: string, command: string, args: string[], input?: string): string;
  /** Removes the namespaces and links (every step tried, errors collected). */
  remove(): Promise<void>;
}

const FIREWALL_TABLE = 'sa_netns_e2e';

/** A random 10.x.y.0/28 that no route of the root namespace covers (the default route aside). */
function pickSubnet(): [number, number, number] {
  const routes = JSON.parse(run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as {
    dst: string;
  }[];
  const toInt = (ip: string) =>
    ip.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
  const taken = routes
    .filter((route) => route.dst && route.dst !== 'default' && /^[\d.]+(\/\d+)?$/.test(route.dst))
    .map((route) => {
      const [ip, bits = '32'] = route.dst.split('/');
      const size = 2 ** (32 - Number(bits));
      const start = Math.floor(toInt(ip!) / size) * size;
      return [start, start + size - 1] as const;
    });
  for (let attempt = 0; attempt < 100; attempt++) {
    const x = 64 + Math.floor(Math.random() * 190);
    const y = Math.floor(Math.random() * 256);
    const z = Math.floor(Math.random() * 16) * 16;
    const start = toInt(`10.${x}.${y}.${z}`);
    if (!taken.some(([from, to]) => start <= to && start + 15 >= from)) return [x, y, z];
  }
  throw new Error('no free 10.x.y.0/28 for the test network');
}

/**
 * Creates the namespaces and links. Throws (never skips) when this process may not: the
 * test needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), as on CI.
 */
export async function createNetns(): Promise<Netns> {
  const id = randomBytes(3).toString('hex');
  const client = `sa-${id}-client`;
  const turn = `sa-${id}-turn`;
  const [x, y, z] = pickSubnet();
  const ip = (n: number) => `10.${x}.${y}.${z + n}`;
  // Link A: .1 root, .2 client. Link B: .5 root, .6 turn. Link C: .9 turn, .10 client.
  const links = [
    { name: 'a', root: true, left: ip(1), right: ip(2), peerNs: client },
    { name: 'b', root: true, left: ip(5), right: ip(6), peerNs: turn },
    { name: 'c', root: false, left: ip(9), right: ip(10), peerNs: client },
  ];
  const exec = (ns: string, command: string, args: string[], input?: string) =>
    run('ip', ['netns', 'exec', ns, command, ...args], input);
  const created: string[] = [];
  const rootLinks: string[] = [];

  const remove = async () => {
    const errors: string[] = [];
    for (const link of rootLinks) {
      const result = spawnSync('ip', ['link', 'del', link], { encoding: 'utf8' });
      if (result.status !== 0 && !/Cannot find device/.test(result.stderr)) {
        errors.push(`ip link del ${link}: ${result.stderr.trim()}`);
      }
    }
    for (const ns of created) {
      // The firewall lives in the namespace and goes with it; delete it first all the same.
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', FIREWALL_TABLE]);
      const result = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
      if (result.status !== 0) errors.push(`ip netns del ${ns}: ${result.stderr.trim()}`);
    }
    if (errors.length > 0) throw new Error(`netns cleanup: ${errors.join('; ')}`);
  };

  try {
    for (const ns of [client, turn]) {
      try {
        run('ip', ['netns', 'add', ns]);
      } catch (error) {
        throw new Error(
          `cannot create network namespace ${ns} (the netns test needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN): ${(error as Error).message}`,
        );
      }
      created.push(ns);
      exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
    }
    for (const link of links) {
      const left = `sa${id}${link.name}0`;
      const right = `sa${id}${link.name}1`;
      run('ip', ['link', 'add', left, 'type', 'veth', 'peer', 'name', right]);
      if (link.root) rootLinks.push(left);
      // Link C's left end goes to the turn namespace; A's and B's stay in the root.
      const leftNs = link.root ? undefined : turn;
      run('ip', ['link', 'set', right, 'netns', link.peerNs]);
      if (leftNs) run('ip', ['link', 'set', left, 'netns', leftNs]);
      const inNs = (ns: string | undefined, args: string[]) =>
        ns ? exec(ns, 'ip', args) : run('ip', args);
      inNs(leftNs, ['addr', 'add', `${link.left}/30`, 'dev', left]);
      inNs(leftNs, ['link', 'set', left, 'up']);
      inNs(link.peerNs, ['addr', 'add', `${link.right}/30`, 'dev', right]);
      inNs(link.peerNs, ['link', 'set', right, 'up']);
    }
    // coturn reaches the stack's address over link B (the root answers on any of its links).
    exec(turn, 'ip', ['route', 'add', `${ip(1)}/32`, 'via', ip(5)]);
    // The client's way to the rest of the world is link C (coturn stands in for its internet
    // side): Chromium gathers on its default route's interface, and reaches coturn's relayed
    // addresses (link B), where a relay's own allocation lives, through it.
    exec(client, 'ip', ['route', 'add', 'default', 'via', ip(9)]);
    run('nft', ['--version']);
  } catch (error) {
    await remove().catch((cleanup) => console.error(cleanup));
    const cause = error as Error;
    if (/nft --version/.test(cause.message)) {
      cause.message = `nft (nftables) is required: apt-get install -y nftables\n${cause.message}`;
    }
    throw cause;
  }
  return {
    id,
    client,
    turn,
    stack: ip(1),
    clientAddress: ip(2),
    turnAddress: ip(9),
    turnRelay: ip(6),
    clientTurnLink: ip(10),
    exec,
    remove,
  };
}

/**
 * What the client's firewall lets through to the stack's address and to coturn:
 * - `turn-udp`: TCP to the stack (HTTP signaling, the RPC), no UDP to the stack at all (the
 *   relay's ICE port included); to coturn only port 3478 over UDP.
 * - `turn-tcp`: no UDP anywhere; to coturn only port 3478 over TCP.
 * - `relay-turn`: no UDP to or from the stack; to coturn only STUN (UDP 3478: the client
 *   gets no TURN credentials in this mode): the client's one way to the relay is the relay's
 *   own allocation (coturn's relayed address, link B's `turnRelay`, routed through link C).
 * Drops of UDP to the stack are counted in the named counter `direct_udp`.
 */
export type FirewallMode = 'turn-udp' | 'turn-tcp' | 'relay-turn';

const FIREWALL_MODE_RULES = (net: Netns): Record<FirewallMode, string[]> => ({
  'turn-udp': [
    `    ip daddr ${net.turnAddress} udp dport != 3478 drop`,
    `    ip daddr ${net.turnAddress} tcp dport != 3478 drop`,
    `    ip daddr ${net.turnAddress} tcp dport 3478 drop`,
  ],
  'turn-tcp': [
    `    ip daddr ${net.turnAddress} udp dport != 3478 drop`,
    `    ip daddr ${net.turnAddress} tcp dport != 3478 drop`,
    '    meta l4proto udp counter name other_udp drop',
  ],
  'relay-turn': [
    `    ip daddr ${net.turnAddress} udp dport != 3478 drop`,
    `    ip daddr ${net.turnAddress} tcp dport 0-65535 drop`,
  ],
});

export function setFirewall(net: Netns, mode: FirewallMode): void {
  const t = `inet ${FIREWALL_TABLE}`;
  const rules = [
    `table ${t} {}`,
    `delete table ${t}`,
    `table ${t} {`,
    '  counter direct_udp {}',
    '  counter other_udp {}',
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    `    ip daddr ${net.stack} meta l4proto udp counter name direct_udp drop`,
    ...FIREWALL_MODE_RULES(net)[mode],
    '  }',
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    `    ip saddr ${net.stack} meta l4proto udp drop`,
    '  }',
    '}',
  ];
  net.exec(net.client, 'nft', ['-f', '-'], `${rules.join('\n')}\n`);
}

/** Packets the firewall dropped on their way to the stack's address over UDP. */
export function directUdpDrops(net: Netns): number {
  const listing = JSON.parse(
    net.exec(net.client, 'nft', ['-j', 'list', 'counter', 'inet', FIREWALL_TABLE, 'direct_udp']),
  ) as { nftables: { counter?: { packets: number } }[] };
  return listing.nftables.find((entry) => entry.counter)?.counter?.packets ?? 0;
}

/**
 * A script that runs Chromium inside `ns` (for launchChromium's executablePath): playwright's
 * pipe to the browser is inherited through `ip netns exec`.
 */
export function chromiumInNetns(ns: string, dir: string): string {
  const path = join(dir, 'chromium-in-netns.sh');
  writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM_PATH} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

export interface NetnsCoturn {
  /** The config coturn runs: the deployment file and the lines the test added. */
  config: string;
  log(): string;
  close(): Promise<void>;
}

/**
 * coturn inside the turn namespace, running the deployment config (infra/coturn/
 * turnserver.conf) as is, with the test's network appended: `allowed-peer-ip` for the
 * stack's address (the relays' network of a deployment) and `relay-ip` for link B. No
 * `allow-loopback-peers`: nothing here needs it. The secret comes on the command line, as
 * in a deployment; pidfile and database go to a temporary folder.
 */
export async function startNetnsCoturn(
  net: Netns,
  secret: string,
  /** Further peers coturn may relay to (e.g. the client, for the relay's own allocation). */
  extraPeers: string[] = [],
): Promise<NetnsCoturn> {
  const config = [
    readFileSync(COTURN_CONFIG_PATH, 'utf8'),
    '# --- added by apps/web/e2e/netns.ts: the test network ---',
    `allowed-peer-ip=${net.stack}`,
    ...extraPeers.map((peer) => `allowed-peer-ip=${peer}`),
    `relay-ip=${net.turnRelay}`,
    '',
  ].join('\n');
  const turnserver = await runTurnserver({
    wrapper: ['ip', 'netns', 'exec', net.turn],
    args: (dir) => {
      const configPath = join(dir, 'turnserver.conf');
      writeFileSync(configPath, config);
      return ['-c', configPath, `--static-auth-secret=${secret}`];
    },
    // Ready once it answers a STUN Binding on link B (from the root namespace).
    ready: () => stunBindingAnswered(net.turnRelay, 3478, 200),
  });
  return { config, log: turnserver.log, close: turnserver.close };
}

/** A UDP port free on `host` a moment ago (the relay's one muxed ICE port). */
export async function freeUdpPort(host: string): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
