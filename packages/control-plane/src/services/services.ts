import { ApiKeysService } from "./api-keys-service.js";
import { AuditService } from "./audit-service.js";
import { ChannelsService } from "./channels-service.js";
import { HostsService } from "./hosts-service.js";
import { SandboxesService } from "./sandboxes-service.js";
import type { ServiceDeps } from "./service-deps.js";
import { SnapshotsService } from "./snapshots-service.js";
import { TeamsService } from "./teams-service.js";

export interface Services {
  teams: TeamsService;
  apiKeys: ApiKeysService;
  hosts: HostsService;
  sandboxes: SandboxesService;
  snapshots: SnapshotsService;
  channels: ChannelsService;
  audit: AuditService;
}

export function createServices(deps: ServiceDeps): Services {
  return {
    teams: new TeamsService(deps),
    apiKeys: new ApiKeysService(deps),
    hosts: new HostsService(deps),
    sandboxes: new SandboxesService(deps),
    snapshots: new SnapshotsService(deps),
    channels: new ChannelsService(deps),
    audit: new AuditService(deps),
  };
}
