import { createSilentLogger, WrennError } from "@wrenn/shared";
import { describe, expect, it } from "vitest";
import type { SnapshotRecord } from "../src/sandbox/snapshot-store.js";
import { cloneVolumeMounts, newSandboxVolumeMounts } from "../src/sandbox/volume-inheritance.js";

const owners: Record<string, string> = { va: "team-a", va2: "team-a", vb: "team-b" };
const ownerOf = (id: string) => owners[id];
const frozen = [
  { volumeId: "va", path: "/mnt/a" },
  { volumeId: "vb", path: "/mnt/b" },
  { volumeId: "vgone", path: "/mnt/gone" },
];

describe("cloneVolumeMounts (which mounts a clone keeps)", () => {
  it("keeps the creating team's inherited volumes that exist, then the requested ones", () => {
    const { mounts, dropped } = cloneVolumeMounts({
      inherited: frozen,
      requested: [{ volumeId: "va2", path: "/data" }],
      ownerOf,
      teamId: "team-a",
      inherit: "team",
    });
    expect(mounts).toEqual([
      { volumeId: "va", path: "/mnt/a" },
      { volumeId: "va2", path: "/data" },
    ]);
    expect(dropped.map((m) => m.volumeId)).toEqual(["vb", "vgone"]);
  });

  it("keeps none for another team or an unknown team", () => {
    for (const teamId of ["team-c", undefined]) {
      const { mounts, dropped } = cloneVolumeMounts({
        inherited: frozen,
        requested: [],
        ownerOf,
        teamId,
        inherit: "team",
      });
      expect(mounts).toEqual([]);
      expect(dropped).toHaveLength(3);
    }
  });

  it("keeps every existing one for a fork, whatever the team", () => {
    const { mounts, dropped } = cloneVolumeMounts({
      inherited: frozen,
      requested: [],
      ownerOf,
      teamId: undefined,
      inherit: "all",
    });
    expect(mounts.map((m) => m.volumeId)).toEqual(["va", "vb"]);
    expect(dropped.map((m) => m.volumeId)).toEqual(["vgone"]);
  });

  it("refuses a requested mount on a path the snapshot's guest mounts already (kept or not)", () => {
    for (const path of ["/mnt/a", "/mnt/b"]) {
      let caught: unknown;
      try {
        cloneVolumeMounts({
          inherited: frozen,
          requested: [{ volumeId: "va2", path }],
          ownerOf,
          teamId: "team-a",
          inherit: "team",
        });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(WrennError);
      expect((caught as WrennError).code).toBe("invalid_argument");
    }
  });
});

describe("newSandboxVolumeMounts", () => {
  const source = { name: "snap", volumeMounts: frozen } as SnapshotRecord;
  const logger = createSilentLogger();

  it("passes the requested mounts through when not a clone, or the snapshot had none", () => {
    const requested = [{ volumeId: "va", path: "/x" }];
    const input = { image: "base", volumeMounts: requested, teamId: "team-b" };
    const volumes = { ownerOf };
    expect(newSandboxVolumeMounts({ id: "s1", input, source: undefined, volumes, logger })).toEqual(
      requested,
    );
    const bare = { name: "bare" } as SnapshotRecord;
    expect(newSandboxVolumeMounts({ id: "s1", input, source: bare, volumes, logger })).toEqual(requested);
  });

  it("drops every inherited volume on a host without volumes", () => {
    const input = { image: "base", snapshot: "snap", teamId: "team-a" };
    expect(newSandboxVolumeMounts({ id: "s1", input, source, volumes: undefined, logger })).toEqual([]);
  });

  it("inherits by the input's team, or all for a fork", () => {
    const volumes = { ownerOf };
    const mine = { image: "base", snapshot: "snap", teamId: "team-b" };
    expect(newSandboxVolumeMounts({ id: "s1", input: mine, source, volumes, logger })).toEqual([
      { volumeId: "vb", path: "/mnt/b" },
    ]);
    const fork = { image: "base", snapshot: "snap", inheritVolumes: "all" as const };
    expect(
      newSandboxVolumeMounts({ id: "s1", input: fork, source, volumes, logger }).map((m) => m.volumeId),
    ).toEqual(["va", "vb"]);
  });
});
