import { type Logger, WrennError } from "@wrenn/shared";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import {
  ipBatch,
  iptablesRestore,
  isMissingObjectMessage,
  parseBatchFailures,
  sysctlWrite,
} from "../drivers-system/ip-tools.js";
import { CommandError, commandFailure } from "../drivers-system/run-command.js";
import { egressPolicyDocument } from "./egress-rules.js";
import {
  type NfsPorts,
  namespaceRulesDocument,
  type RuleNames,
  slotHostRulesDocument,
} from "./network-rules.js";
import {
  type EgressProxyListener,
  GUEST_GATEWAY_IP,
  GUEST_MAC,
  GUEST_PREFIX_LENGTH,
  type SandboxNetwork,
  type SlotListener,
  TAP_MAC,
  TAP_NAME,
} from "./sandbox-network.js";
import type { SlotAddresses } from "./slot-addresses.js";

/** What building a slot's network needs of NetnsNetworkManager. */
export interface SlotBuildDeps {
  names: RuleNames;
  dns: SlotListener | undefined;
  /** The egress proxy (guest TCP to 80/443 of a policy with domain entries goes there). */
  proxy: EgressProxyListener | undefined;
  nfs: NfsPorts | undefined;
  logger: Logger;
  /** Runs a change of the host's tables after the ones before it (each is a read-modify-write). */
  withHostTables<T>(fn: () => Promise<T>): Promise<T>;
  removeSlotHostRules(slot: number): Promise<void>;
}

const NS_SYSCTLS = [
  "net.ipv4.ip_forward=1",
  // The guest talks IPv4 only; no IPv6 addresses means no IPv6 path into the namespace.
  "net.ipv6.conf.all.disable_ipv6=1",
  "net.ipv6.conf.default.disable_ipv6=1",
];

/**
 * Builds one slot's network (namespace, veth pair, TAP, namespace and host rules with the
 * sandbox's egress policy, DNS and egress proxy listeners); a failure undoes the steps that succeeded and throws.
 */
export async function buildSlotNetwork(
  deps: SlotBuildDeps,
  slot: number,
  a: SlotAddresses,
  mtu: number,
  policy: NetworkPolicy,
): Promise<SandboxNetwork> {
  const started = performance.now();
  const done = { netns: false, veth: false, hostRules: false, dns: false, proxy: false };
  const dns = deps.dns;
  const proxy = deps.proxy;
  const hostLines = [
    `netns add ${a.netnsName}`,
    `link add ${a.vethHostName} mtu ${mtu} type veth peer name ${a.vethNsName} mtu ${mtu} netns ${a.netnsName}`,
    `addr add ${a.vethHostIp}/31 dev ${a.vethHostName}`,
    `link set ${a.vethHostName} up`,
    `route add ${a.hostReachableIp}/32 via ${a.vethNsIp} dev ${a.vethHostName}`,
  ];
  const nsLines = [
    "link set lo up",
    `addr add ${a.vethNsIp}/31 dev ${a.vethNsName}`,
    `link set ${a.vethNsName} up`,
    `route add default via ${a.vethHostIp} dev ${a.vethNsName}`,
    `tuntap add dev ${TAP_NAME} mode tap`,
    `link set ${TAP_NAME} address ${TAP_MAC} mtu ${mtu} up`,
    `addr add ${GUEST_GATEWAY_IP}/${GUEST_PREFIX_LENGTH} dev ${TAP_NAME}`,
  ];
  try {
    try {
      await ipBatch(hostLines);
    } catch (err) {
      const failed = failedBatchLine(err);
      done.netns = failed === undefined || failed > 1;
      done.veth = failed === undefined || failed > 2;
      throw batchStepError(slot, hostLines, err);
    }
    done.netns = true;
    done.veth = true;
    // The rest only needs the namespace to exist; run it side by side.
    const steps = await Promise.allSettled([
      ipBatch(nsLines, { netns: a.netnsName }).catch((err: unknown) => {
        throw batchStepError(slot, nsLines, err);
      }),
      sysctlWrite(NS_SYSCTLS, a.netnsName, { ignoreUnknown: true }),
      // The policy goes in before the VM exists, so the guest never runs without it.
      iptablesRestore(namespaceRulesDocument(deps.names, slot, a, dns?.port, deps.nfs), {
        netns: a.netnsName,
      }).then(() =>
        iptablesRestore(egressPolicyDocument(policy, a, proxy?.port), { netns: a.netnsName, noflush: true }),
      ),
      deps
        .withHostTables(() =>
          iptablesRestore(slotHostRulesDocument(deps.names, slot, a, dns?.port, deps.nfs, proxy?.port), {
            noflush: true,
          }),
        )
        .then(() => {
          done.hostRules = true;
        }),
      // The veth's host address exists now (the host batch added it).
      dns?.attach(slot, a.vethHostIp).then(() => {
        done.dns = true;
      }),
      proxy?.attach(slot, a.vethHostIp).then(() => {
        done.proxy = true;
      }),
    ]);
    for (const step of steps) if (step.status === "rejected") throw step.reason;
  } catch (err) {
    await undoBuild(deps, slot, a, done).catch((undoErr: unknown) =>
      deps.logger.error("network unwind failed", { slot, err: undoErr }),
    );
    throw createError(slot, err);
  }
  deps.logger.debug("network created", { slot, ms: Math.round(performance.now() - started) });
  return {
    slot,
    netnsName: a.netnsName,
    tapName: TAP_NAME,
    vethHostName: a.vethHostName,
    hostReachableIp: a.hostReachableIp,
    guestMac: GUEST_MAC,
    vethHostIp: a.vethHostIp,
    vethNsIp: a.vethNsIp,
    mtu,
  };
}

/** Undoes exactly the steps of a failed create that succeeded (never what existed before). */
async function undoBuild(
  deps: SlotBuildDeps,
  slot: number,
  a: SlotAddresses,
  done: { netns: boolean; veth: boolean; hostRules: boolean; dns: boolean; proxy: boolean },
): Promise<void> {
  const lines = [
    ...(done.veth ? [`link del ${a.vethHostName}`] : []),
    ...(done.netns ? [`netns del ${a.netnsName}`] : []),
  ];
  await Promise.all([
    done.dns ? deps.dns?.detach(slot) : Promise.resolve(),
    done.proxy ? deps.proxy?.detach(slot) : Promise.resolve(),
    done.hostRules ? deps.removeSlotHostRules(slot) : Promise.resolve(),
    lines.length ? deleteIgnoringMissing(lines) : Promise.resolve(),
  ]);
}

function failedBatchLine(err: unknown): number | undefined {
  if (!(err instanceof CommandError)) return undefined;
  return parseBatchFailures(err.stderr)[0]?.line;
}

/** Names the batch line that failed, e.g. `link add wrenn-vh-1 … : RTNETLINK answers: File exists`. */
function batchStepError(slot: number, lines: readonly string[], err: unknown): Error {
  if (!(err instanceof CommandError)) return err instanceof Error ? err : new Error(String(err));
  const failure = parseBatchFailures(err.stderr)[0];
  const step = failure ? lines[failure.line - 1] : undefined;
  if (!failure || !step) return err;
  const exists = /File exists/i.test(failure.message);
  return new WrennError(
    exists ? "conflict" : "internal",
    `network slot ${slot}: \`ip ${step}\` failed: ${failure.message}${exists ? " (a leftover of a crash? sweep() removes it)" : ""}`,
    { cause: err },
  );
}

function createError(slot: number, err: unknown): WrennError {
  if (err instanceof WrennError) return err;
  return commandFailure(`create network for slot ${slot}`, err);
}

/** Runs delete commands in one `ip -force -batch`; "no such object" answers count as done. */
export async function deleteIgnoringMissing(lines: readonly string[]): Promise<void> {
  try {
    await ipBatch(lines, { force: true });
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    const failures = parseBatchFailures(err.stderr);
    if (failures.length === 0 || failures.some((f) => !isMissingObjectMessage(f.message))) throw err;
  }
}
