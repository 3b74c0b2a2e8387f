import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { HostAgentService } from "@wrenn/proto";
import { toConnectError, WrennError } from "@wrenn/shared";
import type { VolumeService } from "../volumes/volume-service.js";
import type { VolumeRecord } from "../volumes/volume-store.js";

type VolumeHandlers = Pick<
  ServiceImpl<typeof HostAgentService>,
  "createVolume" | "deleteVolume" | "listVolumes"
>;

function volumeInfo(v: VolumeRecord) {
  return {
    volumeId: v.volumeId,
    teamId: v.teamId,
    name: v.name,
    sizeMib: v.sizeMiB,
    createdAt: timestampFromDate(new Date(v.createdAt)),
  };
}

/** The volume RPCs; without a volume service (volumes off on this host) each is refused. */
export function createVolumeHandlers(
  volumes: VolumeService | undefined,
  defaultSizeMiB: number,
): VolumeHandlers {
  const service = (): VolumeService => {
    if (!volumes) throw new WrennError("failed_precondition", "volumes are not enabled on this host");
    return volumes;
  };
  const guard =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        throw toConnectError(err);
      }
    };
  return {
    createVolume: guard(async (req) => {
      if (!req.volumeId || !req.teamId || !req.name) {
        throw new WrennError("invalid_argument", "volume_id, team_id and name are required");
      }
      const record = await service().create({
        volumeId: req.volumeId,
        teamId: req.teamId,
        name: req.name,
        sizeMiB: req.sizeMib || defaultSizeMiB,
      });
      return { volume: volumeInfo(record) };
    }),
    deleteVolume: guard(async (req) => {
      await service().delete(req.volumeId);
      return {};
    }),
    listVolumes: guard(async (req) => ({
      volumes: service()
        .list(req.teamId || undefined)
        .map(volumeInfo),
    })),
  };
}
