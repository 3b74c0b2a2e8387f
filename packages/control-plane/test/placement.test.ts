import { chooseHost, type HostLoad } from "@wrenn/control-plane";
import { describe, expect, it } from "vitest";
import { allocatedByDatabase, combinedAllocation } from "../src/scheduler/placement.js";

const host = (
  hostId: string,
  capacity: [number, number, number],
  allocated: [number, number, number],
): HostLoad => ({
  hostId,
  capacity: { vcpus: capacity[0], memoryMiB: capacity[1], diskMiB: capacity[2] },
  allocated: { vcpus: allocated[0], memoryMiB: allocated[1], diskMiB: allocated[2] },
});
const small = { vcpus: 1, memoryMiB: 512, diskMiB: 2048 };

describe("placement: least loaded by the tightest resource", () => {
  it("picks the host whose scarcest resource keeps the most room", () => {
    const hosts = [
      host("a", [8, 8192, 65536], [1, 6144, 0]), // memory tight
      host("b", [8, 8192, 65536], [6, 1024, 0]), // vCPUs tight
      host("c", [8, 8192, 65536], [2, 2048, 8192]),
    ];
    expect(chooseHost(small, hosts)?.hostId).toBe("c");
  });

  it("skips hosts the request does not fit and answers null when none fits", () => {
    const hosts = [host("a", [4, 1024, 65536], [0, 768, 0]), host("b", [1, 8192, 65536], [1, 0, 0])];
    expect(chooseHost(small, hosts)).toBeNull();
    expect(chooseHost(small, [...hosts, host("c", [4, 4096, 4096], [0, 0, 0])])?.hostId).toBe("c");
  });

  it("never places on a host whose capacity is unknown", () => {
    expect(chooseHost(small, [host("a", [0, 0, 0], [0, 0, 0])])).toBeNull();
  });

  it("breaks ties by host id so placement is deterministic", () => {
    const hosts = [host("z", [4, 4096, 8192], [0, 0, 0]), host("m", [4, 4096, 8192], [0, 0, 0])];
    expect(chooseHost(small, hosts)?.hostId).toBe("m");
  });

  it("counts paused sandboxes partially and stopped ones not at all", () => {
    const load = allocatedByDatabase(
      [
        { state: "running", vcpus: 2, memoryMiB: 1024, diskMiB: 2048 },
        { state: "paused", vcpus: 2, memoryMiB: 1024, diskMiB: 2048 },
        { state: "stopped", vcpus: 8, memoryMiB: 8192, diskMiB: 9999 },
      ],
      0.25,
    );
    expect(load).toEqual({ vcpus: 2.5, memoryMiB: 1280, diskMiB: 4096 });
  });

  it("takes the larger of the agent's and the database's figures per resource", () => {
    expect(
      combinedAllocation({ vcpus: 4, memoryMiB: 100, diskMiB: 0 }, { vcpus: 1, memoryMiB: 900, diskMiB: 50 }),
    ).toEqual({ vcpus: 4, memoryMiB: 900, diskMiB: 50 });
  });
});
